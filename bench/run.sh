#!/usr/bin/env bash
# bench/run.sh - builds what the benchmark needs (release) and runs it: consolegate against
# websockify 0.13.0 and wsrelay-min, in one run, rotating order, a fresh proxy per measurement.
#
#   bench/run.sh [--smoke] [--rounds N] [other bench.py options, see bench/bench.py --help]
#
# Full mode writes bench/RESULTS.md and bench/results/<date>.jsonl (about 30 min for 3 rounds).
# --smoke: tiny sizes, one round, asserts no timing; writes to target/bench-smoke/ and exits
# non-zero unless a results table with consolegate rows came out (for CI).
# Everything runs on 127.0.0.1 and every client run is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SMOKE=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1; ARGS+=("$1") ;;
    --rounds) ARGS+=("$1" "$2"); shift ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done

log() { echo "bench/run.sh: $*" >&2; }

# 1. The proxy and its drivers. TLS drivers written elsewhere are built when they exist; a
#    driver that does not build (yet) is skipped by bench.py, which lists it as skipped.
cargo build --release -q -p consolegate -p consolegate-driver-noop
for dir in drivers/spice_tls drivers/vencrypt; do
  [ -f "$dir/Cargo.toml" ] || continue
  pkg=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
  cargo build --release -q -p "$pkg" 2>/dev/null || log "$pkg does not build: its variants are skipped"
done

# 2. The minimal relay (bench/rust-min, a copy of ../shared/bench-peers/rust-min), its own target dir.
cargo build --release -q --features tls --manifest-path bench/rust-min/Cargo.toml \
  --target-dir target/bench-rust-min

# 3. websockify 0.13.0 with numpy in bench/.venv (gitignored).
if [ ! -x bench/.venv/bin/websockify ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q 'websockify==0.13.0' numpy \
    || log "websockify could not be installed: its variants are skipped"
fi

# 4. Run. The fd limit is raised to the hard limit inside bench.py (proxies inherit it).
if [ "$SMOKE" = 1 ]; then
  OUT=target/bench-smoke
  mkdir -p "$OUT"
  rm -f "$OUT/RESULTS.md"
  python3 bench/bench.py "${ARGS[@]}" --out "$OUT/smoke.jsonl" --md "$OUT/RESULTS.md" \
    --command "bench/run.sh --smoke"
  # The check: a table with consolegate rows was produced. No timing is asserted.
  if ! grep -q '^| cg-ws | [0-9]' "$OUT/RESULTS.md" || ! grep -q '^| cg-wss | [0-9]' "$OUT/RESULTS.md"; then
    log "smoke: no consolegate results table in $OUT/RESULTS.md"
    exit 1
  fi
  sed -n '/^## Plain ws/,/^## wss/p' "$OUT/RESULTS.md"
  log "smoke OK ($OUT/RESULTS.md)"
else
  python3 bench/bench.py "${ARGS[@]}" --command "bench/run.sh ${ARGS[*]}"
fi
