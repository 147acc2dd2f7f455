#!/bin/sh
# Run every test suite. With "asan" only the sanitizer half. Exits non-zero on the first failure.
set -eu
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
PYTHON=${PYTHON:-/usr/bin/python3}

step() { printf '\n==== %s ====\n' "$*"; }

plain() {
	step "unit tests, fuzz corpus replay, layer checks ($BUILD)"
	meson test -C "$BUILD" --print-errorlogs --num-processes 2 --suite unit --suite fuzz --suite layers
	step "integration tests ($BUILD/hikyaku)"
	HIKYAKU_BIN="$BUILD/hikyaku" "$PYTHON" -m pytest -q -p no:cacheprovider tests/integ
	step "brief fuzzing (libFuzzer)"
	FUZZ_SECONDS=${FUZZ_SECONDS:-10} tests/fuzz/run.sh "$FUZZ_BUILD"
}

sanitized() {
	step "AddressSanitizer + UndefinedBehaviorSanitizer build ($ASAN_BUILD)"
	[ -f "$ASAN_BUILD/build.ninja" ] || meson setup "$ASAN_BUILD" \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
	ninja -C "$ASAN_BUILD"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	step "unit tests under sanitizers"
	meson test -C "$ASAN_BUILD" --print-errorlogs --num-processes 2 --suite unit --suite fuzz --suite layers
	step "integration tests under sanitizers"
	HIKYAKU_BIN="$ASAN_BUILD/hikyaku" "$PYTHON" -m pytest -q -p no:cacheprovider tests/integ
}

case "${1:-all}" in
asan) sanitized ;;
plain) plain ;;
*) plain; sanitized ;;
esac
step "all test suites passed"
