#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test
# (lit for the compiler, gtest units, generated-docs freshness) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
