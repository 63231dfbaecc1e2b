"""Runs a command, sends it SIGINT once it has finished a training step
(its stderr, copied to LOG, shows "step 1/"), and prints its exit status.

usage: interrupt.py LOG COMMAND...
"""
import signal
import subprocess
import sys
import time

log_path, command = sys.argv[1], sys.argv[2:]
with open(log_path, "wb") as log:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        with open(log_path, "rb") as seen:
            if b"step 1/" in seen.read():
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    print(f"exit status {process.wait(timeout=60)}")
