#!/usr/bin/env bash
# fuzz/run.sh [--smoke|--long] [TARGET...] - build the fuzz targets (cargo-fuzz, libFuzzer) and
# run each in turn; fails if any target finds a crash (a panic, a failed property, a hang).
#
#   --smoke  (default) every target for FUZZ_SECONDS (default 15) seconds: what test.sh runs.
#   --long   every target for FUZZ_SECONDS (default 600) seconds: run it after changing a parser.
#
# Inputs the fuzzer finds go to target/corpus/TARGET (kept between runs, not committed); the
# seeds in corpus/TARGET are only read. A crash is saved as artifacts/TARGET/crash-…: reproduce
# it with `target/x86_64-unknown-linux-gnu/release/TARGET artifacts/TARGET/crash-…`, fix it,
# and keep the input as a unit test in the crate that owns the parser and in corpus/TARGET.
# Built on the stable compiler: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the -Z flags it needs.
set -uo pipefail
cd "$(dirname "$0")"

mode=--smoke
if [ $# -gt 0 ] && [[ $1 == --* ]]; then
  mode=$1
  shift
fi
case $mode in
  --smoke) seconds=${FUZZ_SECONDS:-15} ;;
  --long) seconds=${FUZZ_SECONDS:-600} ;;
  *) echo "usage: fuzz/run.sh [--smoke|--long] [TARGET...]" >&2; exit 2 ;;
esac
command -v cargo-fuzz >/dev/null || { echo "fuzz/run.sh: cargo-fuzz is missing (.ci/install-peers installs it)" >&2; exit 1; }

export RUSTC_BOOTSTRAP=1
# No sanitizer: the code under test is safe Rust, and without ASan the build is shorter and the
# runs several times faster. Debug assertions (overflow checks included) stay on.
cargo fuzz build --sanitizer none || exit 1

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release
failed=()
for t in "${targets[@]}"; do
  mkdir -p "target/corpus/$t" "artifacts/$t" target/logs
  max_len=4096
  # Room past the 16 KiB head limit, to reach it.
  [ "$t" = http_request_head ] && max_len=20000
  "$bin/$t" "target/corpus/$t" "corpus/$t" -max_total_time="$seconds" -max_len="$max_len" \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    >"target/logs/$t.log" 2>&1
  status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "target/logs/$t.log")
  cov=$(grep -o 'cov: [0-9]*' "target/logs/$t.log" | tail -1)
  if [ $status -ne 0 ]; then
    failed+=("$t")
    echo "fuzz/run.sh: $t FAILED after ${runs:-?} runs (log: fuzz/target/logs/$t.log):"
    grep -E -A15 'panicked|ERROR: libFuzzer|deadly signal|Test unit written' "target/logs/$t.log" | head -40
  else
    echo "fuzz/run.sh: $t: ${runs:-?} runs in ${seconds} s, $cov"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: crashes in: ${failed[*]}"
  exit 1
fi
echo "fuzz/run.sh: ${#targets[@]} targets, no crash"
