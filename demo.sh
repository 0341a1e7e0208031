#!/usr/bin/env bash
# demo.sh [--check] - run consolegate end to end on its embedded demo: a QEMU VM with a
# VeNCrypt-x509-only VNC console behind the proxy (see tests/examples/demo.rs); prints an https
# URL to the VNC console page (vnc.html).
# Installs QEMU, openssl and npm with apt-get if they are missing (needs root for that).
set -euo pipefail
cd "$(dirname "$0")"
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v openssl >/dev/null || missing+=(openssl)
command -v npm >/dev/null || missing+=(npm)
command -v cc >/dev/null || missing+=(gcc libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "demo: installing ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
cargo build -q --workspace
exec cargo run -q -p consolegate-tests --example demo -- "$@"
