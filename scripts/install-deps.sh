#!/usr/bin/env bash
# Installs the Debian packages moec needs to build and test, idempotently:
# only what is missing is fetched, so a second run costs a dpkg query.
set -euo pipefail

packages=(
  # build
  cmake ninja-build g++ lld git
  # compiler side: LLVM/MLIR 22
  llvm-22-dev llvm-22-tools libmlir-22-dev mlir-22-tools
  # shared libraries
  libabsl-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  # runtime: oneDNN GEMMs (OpenMP), the FlatBuffers artifact
  libdnnl-dev libflatbuffers-dev flatbuffers-compiler
  # training data: SentencePiece tokenizers (moe-data)
  libsentencepiece-dev sentencepiece
  # expert parallelism across processes (runtime/comm): Open MPI
  openmpi-bin libopenmpi-dev
  # independent reference for end-to-end tests (run with /usr/bin/python3)
  python3-torch python3-numpy
  # lit runs on python3
  python3
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
