#!/usr/bin/env bash
# Builds Drover's fuzz targets (fuzz/) and runs each one for a fixed time.
#
#   integration/fuzz.sh [SECONDS]      (default: 60 seconds per target)
#
# The targets are coverage-guided libFuzzer harnesses built on *stable* Rust:
# cargo-fuzz's instrumentation (SanitizerCoverage: inline 8-bit counters, PC
# table, compare tracing, stack depth) is requested with stable `-C` flags
# below, and libFuzzer itself is compiled from the libfuzzer-sys crate with
# the system C++ compiler (`c++`, Debian's g++). No sanitizer (AddressSanitizer
# needs nightly), so what counts as a crash is a panic, an abort (a failed
# allocation included), an arithmetic overflow or a failed `debug_assert!`
# (the fuzz profile keeps both checks on), a `-timeout` hang, or a failed
# property assertion in the target.
#
# The targets run FUZZ_JOBS (default 2) at a time. Each starts from its
# committed seeds (fuzz/seeds/TARGET, read only) and the inputs earlier runs
# on this machine found (fuzz/corpus/TARGET, not committed), with its
# dictionary (fuzz/dicts/TARGET.dict). For each target this prints the
# number of executions and whether it crashed; a crashing input is left in
# fuzz/artifacts/TARGET/ with the command that reproduces it, and the script
# then exits 1. FUZZ_TARGETS="recordio schedule" runs only those targets.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds < 1)); then
  echo "usage: integration/fuzz.sh [SECONDS per target]" >&2
  exit 2
fi
read -r -a targets <<<"${FUZZ_TARGETS:-recordio mesos_event app_json job_json schedule constraints}"
jobs=${FUZZ_JOBS:-2}

# Build. An explicit --target keeps the instrumentation off build scripts and
# proc macros; the fuzz workspace has its own target directory and lock file.
triple=$(rustc -vV | sed -n 's/^host: //p')
export CARGO_TARGET_DIR=$root/fuzz/target
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing"
export RUST_BACKTRACE=1
cargo build --manifest-path fuzz/Cargo.toml --release --locked --target "$triple" --bins
bin_dir=$CARGO_TARGET_DIR/$triple/release
logs=$CARGO_TARGET_DIR/fuzz-logs
rm -rf "$logs"
mkdir -p "$logs"

# Runs one target; leaves "<executions> <artifact or -> <slow units>" in
# $logs/TARGET.result. A crash, a timeout or running out of memory makes
# libFuzzer exit non-zero and write the input; an input slower than 10 s
# (libFuzzer's slow-unit report) is kept too, reported, but not a failure.
run_one() {
  local target=$1
  local corpus=fuzz/corpus/$target artifacts=fuzz/artifacts/$target
  local log=$logs/$target.log
  local -a options=(
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=4096
    -print_final_stats=1 -artifact_prefix="$artifacts/"
  )
  [[ -f fuzz/dicts/$target.dict ]] && options+=(-dict="fuzz/dicts/$target.dict")
  mkdir -p "$corpus" "$artifacts"
  local status=0
  "$bin_dir/$target" "${options[@]}" "$corpus" "fuzz/seeds/$target" >"$log" 2>&1 || status=$?
  local runs artifact=- slow
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  slow=$(grep -c 'Test unit written to .*slow-unit-' "$log" || true)
  if ((status != 0)); then
    artifact=$(grep -v 'slow-unit-' "$log" | sed -n 's/.*Test unit written to \(.*\)$/\1/p' | tail -1)
    artifact=${artifact:-"(no input written: exit status $status, see $log)"}
  fi
  echo "${runs:-?} $slow $artifact" >"$logs/$target.result"
}

printf '\nfuzzing %d targets for %d s each, %d at a time\n' "${#targets[@]}" "$seconds" "$jobs"
running=()
for target in "${targets[@]}"; do
  [[ -x $bin_dir/$target ]] || { echo "no fuzz target $target" >&2; exit 2; }
  run_one "$target" &
  running+=($!)
  if ((${#running[@]} >= jobs)); then
    wait "${running[0]}"
    running=("${running[@]:1}")
  fi
done
wait

crashed=0
printf '\n%-12s %12s  %s\n' target executions result
for target in "${targets[@]}"; do
  read -r runs slow artifact <"$logs/$target.result"
  note=""
  ((slow > 0)) && note=" ($slow slow inputs over 10 s kept in fuzz/artifacts/$target/)"
  if [[ $artifact == - ]]; then
    printf '%-12s %12s  %s\n' "$target" "$runs" "no crash$note"
  else
    crashed=1
    printf '%-12s %12s  %s\n' "$target" "$runs" "CRASH: $artifact$note"
  fi
done
if ((crashed)); then
  printf '\nA target crashed; its log is in %s. Reproduce (after this script built the targets):\n' "$logs"
  for target in "${targets[@]}"; do
    read -r _ _ artifact <"$logs/$target.result"
    if [[ $artifact != - ]]; then
      printf '  %s %s\n' "${bin_dir#"$root"/}/$target" "$artifact"
      grep -m1 -a 'panicked at\|ERROR: libFuzzer' "$logs/$target.log" | sed 's/^/    /' || true
    fi
  done
  exit 1
fi
