#!/usr/bin/env bash
# The benchmark: release build, then hx-bench on a private bus with the real daemon, real libpam,
# pam_herarx.so beside pam_google_authenticator and a bare bus round trip, in one run.
#   sudo ./scripts/bench.sh [--users N] [--scale N] [--clients N] [--throughput-users N]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "run as root: it creates (and removes) benchmark users" >&2; exit 1; fi
scripts/install-test-deps.sh
cargo build --release -p herarxd -p herarxctl -p pam_herarx -p herarx-tests --quiet
exec target/release/hx-bench "$@"
