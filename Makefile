# mod_minimix — build, install, test. See README.md.

LUA_VERSION ?= 5.4
PROSODY ?= prosody
PROSODYCTL ?= prosodyctl
PYTHON ?= python3
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
# Where Prosody looks for community modules (plugin_paths); install puts mod_minimix/ inside.
MODULE_DIR ?= $(PREFIX)/lib/prosody/modules

ifeq ($(LUA_VERSION),jit)
LUA_FEATURE := luajit
LUA := luajit
else
LUA_FEATURE := lua$(subst .,,$(LUA_VERSION))
LUA := lua$(LUA_VERSION)
endif

BUILD := build
LIB := target/release/libminimix.so
# The plugin tree the integration tests load (make install into the build directory).
TEST_MODULE_DIR := $(CURDIR)/$(BUILD)/plugins

.PHONY: all build install test test-rust test-lua integration-test integration-test-13 soak demo lint bench bench-micro bench-e2e bench-profile fuzz clean

all: build

build:
	$(CARGO) build --release --no-default-features --features $(LUA_FEATURE)
	mkdir -p $(BUILD)
	cp $(LIB) $(BUILD)/minimix.so
	cp lua/mod_minimix.lua $(BUILD)/mod_minimix.lua

# Installs DESTDIR/MODULE_DIR/mod_minimix/{mod_minimix.lua,minimix.so}: with
# plugin_paths = { "MODULE_DIR" } and modules_enabled = { "minimix" } Prosody loads it.
install: build
	install -d $(DESTDIR)$(MODULE_DIR)/mod_minimix
	install -m 644 $(BUILD)/mod_minimix.lua $(DESTDIR)$(MODULE_DIR)/mod_minimix/mod_minimix.lua
	install -m 755 $(BUILD)/minimix.so $(DESTDIR)$(MODULE_DIR)/mod_minimix/minimix.so
	@echo "Installed into $(DESTDIR)$(MODULE_DIR)/mod_minimix. Restart Prosody (a module reload does not replace a loaded .so)."

test: test-rust test-lua integration-test

test-rust:
	$(CARGO) test --no-default-features

test-lua: build
	$(LUA) /usr/bin/busted --lua=$(LUA) spec

integration-test: build
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(TEST_MODULE_DIR)
	MINIMIX_MODULE_DIR=$(TEST_MODULE_DIR) PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) \
		$(PYTHON) -m pytest -q tests/integration

# The same suite against Prosody 13 (Debian bookworm-backports), unpacked next to the
# system's 0.12 by tests/prosody13.sh (needs root for apt; idempotent).
PROSODY13_DIR := $(BUILD)/prosody13

integration-test-13: build
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(TEST_MODULE_DIR)
	sh tests/prosody13.sh $(PROSODY13_DIR) >/dev/null
	MINIMIX_MODULE_DIR=$(TEST_MODULE_DIR) PROSODY=$(CURDIR)/$(PROSODY13_DIR)/bin/prosody \
		PROSODYCTL=$(CURDIR)/$(PROSODY13_DIR)/bin/prosodyctl \
		$(PYTHON) -m pytest -q tests/integration

# Opt-in soak (not part of `make test`): a real Prosody on loopback, about SOAK_SECONDS + 20 s.
SOAK_SECONDS ?= 60
soak: build
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(TEST_MODULE_DIR)
	MINIMIX_MODULE_DIR=$(TEST_MODULE_DIR) PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) \
		$(PYTHON) tests/soak/soak.py --seconds $(SOAK_SECONDS)

# A real Prosody on loopback with the module, a MUC and two demo accounts.
demo:
	sh tests/demo.sh

BENCH_OUT := $(BUILD)/bench
BENCH_MODULE_DIR := $(CURDIR)/$(BUILD)/bench-plugins
BENCH_SIZES ?= small,medium
BENCH_ROUNDS ?= 3

# Everything, then bench/RESULTS.md (the generated part) from the outputs in $(BENCH_OUT).
FUZZ_TARGETS := core_sequence stanza_parse
FUZZ_SECONDS ?= 60

# Coverage-guided fuzzing of the sans-IO core (needs cargo-fuzz; nightly features via RUSTC_BOOTSTRAP).
fuzz:
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz
	set -e; for t in $(FUZZ_TARGETS); do mkdir -p $(BUILD)/fuzz-corpus/$$t; \
	  (cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t ../$(BUILD)/fuzz-corpus/$$t corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1); done

bench: bench-micro bench-e2e
	$(PYTHON) bench/report.py --command "make bench"

# criterion (--quick) on the core, then the bridge measured from inside Lua.
bench-micro: build
	mkdir -p $(BENCH_OUT)
	$(CARGO) bench --no-default-features --bench core -- --quick > $(BENCH_OUT)/core-bench.txt
	cat $(BENCH_OUT)/core-bench.txt
	$(LUA) bench/lua/bridge_bench.lua --lib $(BUILD)/minimix.so --json $(BENCH_OUT)/bridge.json

# Two real Prosody servers (module / plain), paired rounds; see bench/e2e.py --help.
bench-e2e: build
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(BENCH_MODULE_DIR)
	mkdir -p $(BENCH_OUT)
	PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) $(PYTHON) bench/e2e.py --module-dir $(BENCH_MODULE_DIR) \
		--sizes $(BENCH_SIZES) --rounds $(BENCH_ROUNDS) --out-dir $(BENCH_OUT) --json $(BENCH_OUT)/e2e.json

# Diagnostics: one medium round with perf profiles and per-event CPU (not part of `bench`).
bench-profile: build
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(BENCH_MODULE_DIR)
	mkdir -p $(BENCH_OUT)
	PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) $(PYTHON) bench/e2e.py --module-dir $(BENCH_MODULE_DIR) \
		--sizes medium --rounds 1 --perf --event-times --out-dir $(BENCH_OUT) --json $(BENCH_OUT)/e2e-profile.json

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf $(BUILD)
