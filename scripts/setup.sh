#!/usr/bin/env bash
# Installs what Berth needs to build, run and test on a fresh Debian machine (run as root):
# libseccomp for the runtime, busybox-static for the test image, nftables/iproute2 for the
# network driver (iptables only to test coexistence with dockerd's FORWARD DROP), hyperfine for the
# benchmarks. Idempotent.
set -euo pipefail
pkgs=(libseccomp-dev pkg-config busybox-static nftables iptables iproute2 zstd hyperfine curl ca-certificates docker-registry skopeo)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo-nextest >/dev/null && ! cargo nextest --version >/dev/null 2>&1; then
  echo "cargo-nextest not found; tests will run with cargo test" >&2
fi
