#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install what the tests need, check formatting and
# lints, build everything, run unit tests and the end-to-end tests against a real dbus-daemon
# (with the shipped policy), real libpam, pamtester, oathtool and real users.
# Needs root: the end-to-end tests create users and a uniquely named /etc/pam.d file, and remove
# them afterwards. It never edits the machine's own PAM files.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "run as root: the end-to-end tests create real users (sudo $0)" >&2
  exit 1
fi
scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --all-targets --quiet
cargo test --workspace --quiet
