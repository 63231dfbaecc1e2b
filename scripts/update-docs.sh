#!/usr/bin/env bash
# Refreshes docs/generated/ from the ODS definitions (run after editing .td files).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake --build "$build" --target moec-docs
mkdir -p docs/generated
cp "$build/dialects/moe/MoeDialect.md" "$build/passes/MoePasses.md" docs/generated/
echo "docs/generated/ updated"
