#!/usr/bin/env bash
# The whole test suite: unit tests and the integration tests that start real daemons
# (root needed: namespaces, overlayfs, cgroups). Uses nextest when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --workspace --no-fail-fast "$@"
else
  exec cargo test --workspace --no-fail-fast "$@"
fi
