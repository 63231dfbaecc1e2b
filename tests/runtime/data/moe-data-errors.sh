#!/usr/bin/env bash
# moe-data end to end on the committed excerpt, then each bad input: one
# line on stderr naming the file, exit status 1, no output left behind.
#
#   moe-data-errors.sh MOE_DATA EXCERPT
set -uo pipefail
tool=$(realpath "$1")
excerpt=$(realpath "$2")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

# expect_error NEEDLE COMMAND...: fails unless COMMAND exits 1 with one
# line of stderr containing NEEDLE.
expect_error() {
  local needle=$1
  shift
  "$@" >"$work/stdout" 2>"$work/stderr"
  local status=$?
  local lines
  lines=$(wc -l <"$work/stderr")
  if [[ $status -ne 1 || $lines -ne 1 ]] ||
     ! grep -qF -- "moe-data: error: " "$work/stderr" ||
     ! grep -qF -- "$needle" "$work/stderr"; then
    echo "FAIL: $* (exit $status, $lines lines):" >&2
    cat "$work/stderr" >&2
    echo "  expected: $needle" >&2
    failures=$((failures + 1))
  fi
}

must() {
  if ! "$@" >"$work/stdout" 2>"$work/stderr"; then
    echo "FAIL: $*" >&2
    cat "$work/stderr" >&2
    failures=$((failures + 1))
  fi
}

# The happy path: train, encode with a validation cut, inspect, decode.
must "$tool" train-tokenizer --input "$excerpt" --vocab-size 300 \
  --model-type bpe --out "$work/sp" --threads 1
must "$tool" encode --tokenizer "$work/sp.model" --input "$excerpt" \
  --out "$work/corpus.tok" --validation-fraction 0.1
must "$tool" info "$work/corpus.val.tok"
if ! grep -qx "vocab_size: 300" "$work/stdout"; then
  echo "FAIL: info printed $(cat "$work/stdout")" >&2
  failures=$((failures + 1))
fi
must "$tool" encode --tokenizer bytes --input "$excerpt" --out "$work/bytes.tok"
must "$tool" decode --tokenizer bytes "$work/bytes.tok" --limit 16
if [[ "$(cat "$work/stdout")" != "CHAPTER 1. Loomi" ]]; then
  echo "FAIL: decode printed $(cat "$work/stdout")" >&2
  failures=$((failures + 1))
fi

mkdir "$work/errors"
cd "$work/errors"
printf '' >empty.txt
printf 'not a model' >garbage.model
head -c 100 "$work/bytes.tok" >truncated.tok

expect_error "expected a command" "$tool"
expect_error "got 'frobnicate'" "$tool" frobnicate
expect_error "info takes one FILE.tok" "$tool" info
expect_error "absent.txt: cannot open" \
  "$tool" encode --tokenizer bytes --input absent.txt --out out.tok
expect_error "empty.txt: empty corpus" \
  "$tool" encode --tokenizer bytes --input empty.txt --out out.tok
expect_error "absent.model: cannot open the SentencePiece model" \
  "$tool" encode --tokenizer absent.model --input "$excerpt" --out out.tok
expect_error "garbage.model: not a SentencePiece model" \
  "$tool" encode --tokenizer garbage.model --input "$excerpt" --out out.tok
expect_error "validation fraction 1.5 is outside [0, 1)" \
  "$tool" encode --tokenizer bytes --input "$excerpt" --out out.tok \
  --validation-fraction 1.5
expect_error "absent.txt: cannot open" \
  "$tool" train-tokenizer --input absent.txt --vocab-size 300 --out sp
expect_error "empty.txt: empty corpus" \
  "$tool" train-tokenizer --input empty.txt --vocab-size 300 --out sp
expect_error "sp.model: SentencePiece training failed" \
  "$tool" train-tokenizer --input "$excerpt" --vocab-size 100000 --out sp
expect_error "absent.tok: cannot open" "$tool" info absent.tok
expect_error "truncated.tok: token_count" "$tool" info truncated.tok
expect_error "differs from the tokenizer's 300" \
  "$tool" decode --tokenizer "$work/sp.model" "$work/bytes.tok"

leftover=$(ls -A | grep -vxE 'empty.txt|garbage.model|truncated.tok')
if [[ -n "$leftover" ]]; then
  echo "FAIL: errors left files behind: $leftover" >&2
  failures=$((failures + 1))
fi
if ((failures > 0)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "moe-data: all checks passed"
