#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: install what the tests need, check formatting and
# lints, build everything, run unit tests and the end-to-end tests against a real dbus-daemon
# (with the shipped policy), real libpam, pamtester, oathtool and real users.
# Needs root: the end-to-end tests create users and a uniquely named /etc/pam.d file, and remove
# them afterwards. It never edits the machine's own PAM files.
# The packaging test installs and purges the herarx .deb (use a disposable machine, as CI does).
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
# Every fuzz target for a short bound (FUZZ_SECONDS each, 10 by default): the cold fuzz build
# is most of its cost (about 10 CPU-minutes). A finding fails the suite, after the tests below too.
fuzz_status=0
scripts/fuzz.sh "${FUZZ_SECONDS:-10}" || fuzz_status=$?
# The Debian package, for tests/tests/packaging.rs (which installs, checks and purges it).
scripts/build-deb.sh >/dev/null
# cargo prints one summary per test binary; the last one is often a crate's empty doc-tests, so
# close with the whole count, in the plain form CI reads.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --quiet 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
# A fuzz finding (reported above, by scripts/fuzz.sh) fails the suite too.
[ "$status" != 0 ] || status=$fuzz_status
exit "$status"
