# hikyaku: every target installs missing Debian packages first (scripts/deps.sh), then builds
# with Meson + Ninja. See README.md.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
PYTHON     ?= /usr/bin/python3
CONFIG     ?= etc/hikyaku.dev.yaml
PREFIX     ?= /usr/local

.PHONY: all deps build run test test-unit test-integ test-asan test-fuzz bench install format clean

all: build

deps:
	@scripts/deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	@mkdir -p var
	./$(BUILD)/hikyaku serve -c $(CONFIG)

# Everything: unit + fuzz replay + layer checks, integration, brief fuzzing, then unit and
# integration again under AddressSanitizer and UndefinedBehaviorSanitizer.
test: build
	scripts/test.sh

test-unit: build
	meson test -C $(BUILD) --print-errorlogs --suite unit --suite fuzz --suite layers

test-integ: build
	HIKYAKU_BIN=$(BUILD)/hikyaku $(PYTHON) -m pytest -q tests/integ

test-asan: deps
	scripts/test.sh asan

test-fuzz: deps
	tests/fuzz/run.sh $(FUZZ_BUILD)

# Every benchmark runs even when one misses its goal (exit 3); the first failure's status is kept.
bench: build
	@rc=0; for b in ingress relay log_search resend api_send; do \
		bench/$$b.sh || { s=$$?; [ $$rc -ne 0 ] || rc=$$s; }; \
	done; exit $$rc

install: build
	scripts/install.sh $(BUILD) $(PREFIX)

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
