#!/usr/bin/env bash
# test.sh - the whole test suite: unit and integration tests against real QEMU, Redis, TigerVNC
# and Chromium; the .deb and .rpm packages (built and checked, then installed, upgraded and
# purged on this machine); a smoke run of the benchmark and of the fuzz targets
# (fuzz/README.md). Installs missing peers first (.ci/install-peers, needs root). Every step
# runs; the exit code says whether all passed.
set -uo pipefail
cd "$(dirname "$0")"
.ci/install-peers --if-missing || exit 1

failed=()
step() {
  echo "== $*"
  "$@" || failed+=("$*")
}
# cargo test does not build the cdylib drivers the integration tests load: build everything first.
step cargo build --workspace --all-targets
step cargo fmt --all -- --check
step cargo clippy --workspace --all-targets -q -- -D warnings
step cargo test --workspace --no-fail-fast
step packaging/check.sh
step packaging/install-test.sh
step bench/run.sh --smoke
step fuzz/run.sh --smoke
if [ ${#failed[@]} -gt 0 ]; then
  printf 'test.sh: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "test.sh: all steps passed"
