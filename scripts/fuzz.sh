#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time (SECONDS each, default 20) on its
# seed corpus (fuzz/seeds/TARGET, in the repository) and its working corpus (fuzz/corpus/TARGET,
# not committed), and fails if any target finds a crash, a failed property (an assert), a
# timeout or an out-of-memory. The input that did it is left in fuzz/artifacts/TARGET/; run it
# again with `cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` (see fuzz/README.md).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# How it builds on a stable-only toolchain (the machine has no nightly and cannot fetch one):
# cargo-fuzz (from crates.io) with libFuzzer (built from source by the libfuzzer-sys crate with
# the system C++ compiler) and AddressSanitizer. The coverage instrumentation cargo-fuzz asks
# for (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*) is stable; only the
# sanitizer flag (-Zsanitizer=address) is not, so RUSTC_BOOTSTRAP=1 lets stable rustc accept
# it. ASan is kept (not `-s none`, which needs no RUSTC_BOOTSTRAP) because it makes
# -malloc_limit_mb work: one allocation over the limit is reported at once as a finding,
# which is how an unbounded allocation driven by a length field shows up. FUZZ_SANITIZER=none
# builds without it (no RUSTC_BOOTSTRAP needed) if a toolchain ever refuses the flag.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...] (SECONDS a whole number)" >&2; exit 2 ;;
esac
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: run scripts/install-test-deps.sh (or cargo install cargo-fuzz --locked)" >&2
  exit 1
fi
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1
cd fuzz
# Fuzz what ships: every crate both builds use (toml, ciborium, coset, p256...) must be at the
# version the root Cargo.lock locks. When fuzz/Cargo.lock disagrees (the root lock moved on),
# start again from the root lock: cargo then adds only the fuzz-only packages (libfuzzer-sys
# and its build dependencies), which needs the crates.io index once.
# A package of fuzz/Cargo.lock at a version the root lock does not have (under a name it has).
drifted() {
  awk 'FNR == 1 || /^\[\[package\]\]/ { n = "" } /^name = / { n = $3 } /^version = / && n != "" { print FILENAME == "../Cargo.lock", n, $3 }' \
      ../Cargo.lock Cargo.lock |
    awk '$1 == 1 { name[$2] = 1; have[$2 " " $3] = 1; next } ($2 in name) && !(($2 " " $3) in have)'
}
if [ ! -e Cargo.lock ] || [ -n "$(drifted)" ]; then
  echo "fuzz: fuzz/Cargo.lock differs from Cargo.lock: starting it again from Cargo.lock" >&2
  cp ../Cargo.lock Cargo.lock
fi
build=(--sanitizer "$sanitizer")
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
# `cargo fuzz list` failing inside the process substitution would leave nothing to run and a
# run that "found nothing": refuse that.
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets to run (does \`cargo fuzz list\` work?)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$(date +%s)
# One build of all targets (they share every dependency); `cargo fuzz run` below then finds
# them built with the same flags.
cargo fuzz build "${build[@]}" >"$log" 2>&1 || {
  cat "$log" >&2
  echo "fuzz: the fuzz targets do not build (log above)" >&2
  exit 1
}
echo "fuzz: built in $(($(date +%s) - started)) s; running ${#targets[@]} targets, ${seconds} s each"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  # -timeout: one input taking over 10 s is a finding (a hang); -malloc_limit_mb: so is one
  # allocation over 512 MB; -rss_limit_mb bounds the whole process.
  status=0
  cargo fuzz run "${build[@]}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  if [ "$status" != 0 ]; then
    failed+=("$t")
    # What failed (the panic or the sanitizer's report) and where the input is.
    grep -v '^#[0-9]' "$log" | grep -E -A3 "panicked at|ERROR: (AddressSanitizer|libFuzzer)|==[0-9]+==" | head -30 >&2 || true
    grep -A1 "Failing input" "$log" >&2 || true
    echo "fuzz: $t FAILED (exit $status) after ${runs:-?} runs: input in fuzz/artifacts/$t/" >&2
  else
    echo "fuzz: $t: ${runs:-?} runs, ${cov:-cov: ?}, nothing found"
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds} s each with nothing found ($(($(date +%s) - started)) s in all)"
