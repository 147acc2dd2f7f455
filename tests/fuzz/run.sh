#!/bin/bash
# run.sh - build the libFuzzer variants of tests/fuzz/fuzz_*.c and fuzz each one briefly.
#
# Usage: tests/fuzz/run.sh [BUILD_DIR]        (default build-fuzz, relative to the repository)
# Environment:
#   FUZZ_SECONDS  seconds per target (default 20)
#   FUZZ_TARGETS  space-separated names to run (default: every tests/fuzz/fuzz_<name>.c)
#   FUZZ_KEEP=1   keep the scratch directory (fuzzed corpus copies and logs)
#   CI=true       print whole logs of failing targets
#
# Each target fuzzes a COPY of tests/fuzz/corpus/<name>/, so the committed corpus never changes;
# with tests/fuzz/<name>.dict it is passed as -dict=. A crash, leak, timeout or out-of-memory
# input is copied to tests/fuzz/artifacts/ and the script exits 1 after all targets ran, printing
# how to reproduce. Without clang or libFuzzer it prints why and exits 0.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

builddir=${1:-build-fuzz}
seconds=${FUZZ_SECONDS:-20}
ci=${CI:-false}
artifacts_dir=tests/fuzz/artifacts

say() { printf 'fuzz: %s\n' "$*"; }
skip() { say "SKIP: $*"; exit 0; }
die() { say "ERROR: $*" >&2; exit 2; }

case $seconds in
'' | *[!0-9]*) die "FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" ;;
esac
[ "$seconds" -gt 0 ] || die "FUZZ_SECONDS must be at least 1"

# Targets: every fuzz_<name>.c that exists (files appear module by module).
if [ -n "${FUZZ_TARGETS:-}" ]; then
	read -r -a names <<<"$FUZZ_TARGETS"
	for n in "${names[@]}"; do
		[ -f "tests/fuzz/fuzz_$n.c" ] || die "no tests/fuzz/fuzz_$n.c"
	done
else
	names=()
	for f in tests/fuzz/fuzz_*.c; do
		[ -e "$f" ] || continue
		n=${f#tests/fuzz/fuzz_}
		names+=("${n%.c}")
	done
fi
[ "${#names[@]}" -gt 0 ] || skip "no tests/fuzz/fuzz_*.c targets yet"

# Tools: clang with its libFuzzer runtime; anything missing is a skip, not a failure.
command -v clang >/dev/null 2>&1 || skip "clang not installed (Debian: clang, libclang-rt-14-dev)"
command -v meson >/dev/null 2>&1 || skip "meson not installed"
command -v ninja >/dev/null 2>&1 || skip "ninja not installed"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/hk-fuzz.XXXXXX")
cleanup() {
	if [ "${FUZZ_KEEP:-0}" = 1 ]; then
		say "scratch kept in $scratch"
	else
		rm -rf "$scratch"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n);\n%s\n' \
	'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' \
	>"$scratch/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$scratch/probe.c" -o "$scratch/probe" \
	>"$scratch/probe.log" 2>&1; then
	sed 's/^/  /' "$scratch/probe.log" | head -5
	skip "clang cannot link libFuzzer with ASan/UBSan (Debian: libclang-rt-14-dev)"
fi

# Configure (once) with clang; an existing directory must already be a clang build.
# Every object gets coverage instrumentation (fuzzer-no-link): the parsers live in the module
# libraries, not in the thin fuzz_<name>.c wrappers; the targets add -fsanitize=fuzzer at link.
# shellcheck disable=SC2054 # commas belong to the option values
fuzz_opts=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
	-Dc_args=-fsanitize=fuzzer-no-link)
if [ -f "$builddir/build.ninja" ]; then
	if ! grep -A1 '^rule c_COMPILER' "$builddir/build.ninja" | grep -q 'command = [^ ]*clang'; then
		die "$builddir is not a clang build; remove it or pass another directory"
	fi
	meson configure "$builddir" "${fuzz_opts[@]}" >/dev/null
else
	say "configuring $builddir"
	CC=clang meson setup "$builddir" "${fuzz_opts[@]}" >"$scratch/setup.log" 2>&1 || {
		cat "$scratch/setup.log" >&2
		die "meson setup $builddir failed"
	}
fi

ninja_targets=()
for n in "${names[@]}"; do
	ninja_targets+=("tests/fuzz_$n")
done
say "building ${ninja_targets[*]}"
ninja -C "$builddir" "${ninja_targets[@]}" >"$scratch/build.log" 2>&1 || {
	tail -n 60 "$scratch/build.log" >&2
	die "build failed"
}

# Sanitizer reports must end the run so libFuzzer saves the input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}

failed=()
for n in "${names[@]}"; do
	bin="$builddir/tests/fuzz_$n"
	work="$scratch/$n"
	mkdir -p "$work/corpus" "$work/artifacts"
	seeds=0
	if [ -d "tests/fuzz/corpus/$n" ]; then
		cp -R "tests/fuzz/corpus/$n/." "$work/corpus/"
		seeds=$(find "$work/corpus" -type f | wc -l)
	else
		say "$n: no tests/fuzz/corpus/$n/, starting from nothing"
	fi
	args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
		-artifact_prefix="$work/artifacts/")
	dict_note=
	if [ -f "tests/fuzz/$n.dict" ]; then
		args+=(-dict="tests/fuzz/$n.dict")
		dict_note=", dictionary $n.dict"
	fi
	say "$n: ${seconds}s from $seeds seeds$dict_note"
	rc=0
	# The outer timeout only guards against a hung fuzzer; libFuzzer stops itself in time.
	# The subshell keeps bash's own "Aborted" notice out of the output (the log has the report).
	(
		timeout -k 10 $((seconds + 120)) "$bin" "${args[@]}" "$work/corpus" \
			>"$work/fuzz.log" 2>&1
		exit $?
	) 2>/dev/null || rc=$?

	found=()
	for a in "$work"/artifacts/*; do
		[ -f "$a" ] || continue
		mkdir -p "$artifacts_dir"
		dest="$artifacts_dir/${n}-$(basename "$a")"
		cp "$a" "$dest"
		found+=("$dest")
	done
	total=$(find "$work/corpus" -type f | wc -l)
	if [ "$rc" -eq 0 ] && [ "${#found[@]}" -eq 0 ]; then
		stats=$(grep -E '^stat::number_of_executed_units' "$work/fuzz.log" | awk '{print $2}')
		say "$n: ok (${stats:-?} runs, corpus $seeds -> $total, committed corpus untouched)"
		continue
	fi
	failed+=("$n")
	say "$n: FAILED (exit $rc)"
	if [ "$ci" = true ]; then
		sed 's/^/  | /' "$work/fuzz.log"
	else
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written|==[0-9]+==' "$work/fuzz.log" |
			head -n 20 | sed 's/^/  | /'
		say "$n: full log: $work/fuzz.log (kept)"
		FUZZ_KEEP=1
	fi
	if [ "${#found[@]}" -eq 0 ]; then
		say "$n: no input was saved (bad dictionary or option?); see the log above"
		continue
	fi
	for f in "${found[@]}"; do
		say "$n: saved $f"
	done
	cat <<EOF
fuzz: reproduce with
fuzz:   $builddir/tests/fuzz_$n ${found[0]}
fuzz: or without clang (plain replayer):
fuzz:   ninja -C build tests/fuzz_$n && build/tests/fuzz_$n ${found[0]}
fuzz: then fix the bug, add the input to tests/fuzz/corpus/$n/ and a unit test for it.
EOF
done

if [ "${#failed[@]}" -gt 0 ]; then
	say "failed: ${failed[*]}"
	exit 1
fi
say "all ${#names[@]} targets ok"
