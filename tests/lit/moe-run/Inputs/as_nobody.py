"""Runs a command as the unprivileged user nobody (65534) when started as
root, so that file permissions apply; otherwise runs it as it is.

Usage: as_nobody.py COMMAND [ARG...]"""
import os
import sys

if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
os.execvp(sys.argv[1], sys.argv[1:])
