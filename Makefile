# mod_minimix — build, install, test. See README.md.

# The Lua the module is built for: Prosody's interpreter (Debian's 0.12 and 13: 5.4).
LUA_VERSION ?= 5.4
PROSODY ?= prosody
PROSODYCTL ?= prosodyctl
PYTHON ?= python3
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
# Where Prosody looks for community modules; install puts mod_minimix/ inside. Under
# PREFIX=/usr this is Debian's own plugin directory (found without plugin_paths); under
# /usr/local add it to plugin_paths.
MODULE_DIR ?= $(PREFIX)/lib/prosody/modules

SUPPORTED_LUA := 5.1 5.2 5.3 5.4 jit
ifeq ($(filter $(LUA_VERSION),$(SUPPORTED_LUA)),)
$(error LUA_VERSION=$(LUA_VERSION): expected one of $(SUPPORTED_LUA))
endif
ifeq ($(LUA_VERSION),jit)
LUA_FEATURE := luajit
LUA := luajit
LUA_NAME := luajit
else
LUA_FEATURE := lua$(subst .,,$(LUA_VERSION))
LUA := lua$(LUA_VERSION)
LUA_NAME := lua$(LUA_VERSION)
endif

BUILD := build
# One output directory per Lua (build/lua5.4, build/lua5.3, build/luajit...), so builds
# for different Luas never replace each other; install and the tests take LUA_VERSION's.
OUT := $(BUILD)/$(LUA_NAME)
# A cargo target directory per Lua too: cargo keeps one cdylib per target directory and
# would rebuild it at every switch of Lua feature.
CARGO_TARGET := target/$(LUA_NAME)
LIB := $(CARGO_TARGET)/release/libminimix.so
# The plugin tree the integration tests load (make install into the build directory).
TEST_MODULE_DIR := $(CURDIR)/$(BUILD)/plugins

# Prosody's library tree the busted specs load util.stanza etc. from: Debian's for 5.4
# (its C modules are built for 5.4 only); for 5.2/5.3, Prosody 13 built from Debian's
# source for that Lua by tests/prosody-source.sh.
PROSODY_FOR_LUA := $(BUILD)/prosody13-$(LUA_NAME)
ifeq ($(LUA_VERSION),5.4)
PROSODY_SOURCE_DIR ?= /usr/lib/prosody
else
PROSODY_SOURCE_DIR ?= $(CURDIR)/$(PROSODY_FOR_LUA)/lib/prosody
endif

.PHONY: all build check-lib install deps test test-rust proptest test-lua test-packaging integration-test integration-test-13 \
	integration-test-lua soak demo lint bench bench-micro bench-e2e bench-profile fuzz dist distcheck deb test-deb clean

all: build

build:
	$(CARGO) build --release --no-default-features --features $(LUA_FEATURE) --target-dir $(CARGO_TARGET)
	mkdir -p $(OUT)
	cp $(LIB) $(OUT)/minimix.so
	cp lua/mod_minimix.lua $(OUT)/mod_minimix.lua

# The library loads in LUA_VERSION's interpreter and says it was built for it.
check-lib: build
	$(LUA) tests/check_lib.lua $(OUT)/minimix.so

# Installs DESTDIR/MODULE_DIR/mod_minimix/{mod_minimix.lua,minimix.so} for LUA_VERSION:
# with MODULE_DIR in plugin_paths (or the default PREFIX=/usr on Debian) and
# modules_enabled = { "minimix" } Prosody loads it.
install: build
	install -d $(DESTDIR)$(MODULE_DIR)/mod_minimix
	install -m 644 $(OUT)/mod_minimix.lua $(DESTDIR)$(MODULE_DIR)/mod_minimix/mod_minimix.lua
	install -m 755 $(OUT)/minimix.so $(DESTDIR)$(MODULE_DIR)/mod_minimix/minimix.so
	@echo "Installed into $(DESTDIR)$(MODULE_DIR)/mod_minimix (built for $(LUA_NAME)). Restart Prosody (a module reload does not replace a loaded .so)."

test: deps test-rust test-lua integration-test test-packaging

# Installs the Debian packages and pytest the suite needs when they are missing (root), or
# says which are missing.
deps:
	sh tests/deps.sh

# The property tests run with a fixed seed here (the same cases every run, so CI is
# deterministic); `make proptest` searches with fresh random seeds and many more cases.
PROPTEST_SEED ?= 20261130
PROPTEST_CASES ?= 20000

test-rust:
	PROPTEST_RNG_SEED=$(PROPTEST_SEED) $(CARGO) test --no-default-features

proptest:
	PROPTEST_CASES=$(PROPTEST_CASES) $(CARGO) test --release --no-default-features proptests

test-lua: build
ifneq ($(filter $(LUA_VERSION),5.1 jit),)
	@echo "No Prosody library tree for $(LUA_NAME) can be built here (Prosody 13 needs Lua 5.2+," >&2; \
	 echo "Debian's 0.12 C modules are 5.4-only): the specs need util.stanza. 'make check-lib LUA_VERSION=$(LUA_VERSION)' checks the build loads." >&2; \
	 exit 1
endif
ifneq ($(LUA_VERSION),5.4)
	sh tests/prosody-source.sh $(LUA_VERSION) $(PROSODY_FOR_LUA) >/dev/null
endif
	MINIMIX_BUILD_DIR=$(OUT) PROSODY_SOURCE_DIR=$(PROSODY_SOURCE_DIR) $(LUA) /usr/bin/busted --lua=$(LUA) spec

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

# The integration suite against Prosody 13 built from Debian's source for LUA_VERSION
# (5.2, 5.3; 5.4 too, though Debian's own binaries cover it), the module built for that Lua.
# INTEGRATION_TESTS picks files (default: all).
INTEGRATION_TESTS ?= tests/integration
integration-test-lua: build
	sh tests/prosody-source.sh $(LUA_VERSION) $(PROSODY_FOR_LUA) >/dev/null
	$(MAKE) --no-print-directory install LUA_VERSION=$(LUA_VERSION) DESTDIR= MODULE_DIR=$(CURDIR)/$(BUILD)/plugins-$(LUA_NAME)
	MINIMIX_MODULE_DIR=$(CURDIR)/$(BUILD)/plugins-$(LUA_NAME) PROSODY=$(CURDIR)/$(PROSODY_FOR_LUA)/bin/prosody \
		PROSODYCTL=$(CURDIR)/$(PROSODY_FOR_LUA)/bin/prosodyctl $(PYTHON) -m pytest -q $(INTEGRATION_TESTS)

# make install's layout (DESTDIR/PREFIX/MODULE_DIR) and what a real Prosody makes of the
# module: loads the installed tree, refuses a build for another Lua (Lua 5.3's) and bad
# option values with clear log lines, advertises no feature of its own.
OTHER_LUA_VERSION := 5.3
test-packaging: build
	$(MAKE) --no-print-directory build LUA_VERSION=$(OTHER_LUA_VERSION)
	$(MAKE) --no-print-directory install DESTDIR= MODULE_DIR=$(TEST_MODULE_DIR)
	MINIMIX_MODULE_DIR=$(TEST_MODULE_DIR) MINIMIX_OTHER_LUA_DIR=$(CURDIR)/$(BUILD)/lua$(OTHER_LUA_VERSION) \
		PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) \
		$(PYTHON) -m pytest -q tests/packaging/test_install_layout.py tests/packaging/test_load_refusals.py

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
	$(LUA) bench/lua/bridge_bench.lua --lib $(OUT)/minimix.so --json $(BENCH_OUT)/bridge.json

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

# ---------------------------------------------------------------- source release

# The version of the release: Cargo.toml's package version.
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST_NAME := mod_minimix-$(VERSION)
DIST_TARBALL := $(BUILD)/$(DIST_NAME).tar.gz

# A versioned source tarball that builds offline: the tracked files (as in the working tree)
# plus every crate Cargo.lock names under vendor/ and a .cargo/config.toml that points cargo
# at them. Reproducible: sorted, owner 0, mtime of the last commit.
dist:
	@git rev-parse --git-dir >/dev/null 2>&1 || { echo "make dist needs a git checkout (it ships the tracked files)" >&2; exit 1; }
	rm -rf $(BUILD)/dist && mkdir -p $(BUILD)/dist/$(DIST_NAME)/.cargo
	git ls-files -z | xargs -0 cp --parents -t $(BUILD)/dist/$(DIST_NAME)
	$(CARGO) vendor --locked --versioned-dirs $(BUILD)/dist/$(DIST_NAME)/vendor \
		> $(BUILD)/dist/$(DIST_NAME)/.cargo/config.toml
	grep -q 'directory = "' $(BUILD)/dist/$(DIST_NAME)/.cargo/config.toml
	sed -i 's|directory = ".*"|directory = "vendor"|' $(BUILD)/dist/$(DIST_NAME)/.cargo/config.toml
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$$(git log -1 --format=%ct) \
		-C $(BUILD)/dist -cf - $(DIST_NAME) | gzip -n > $(DIST_TARBALL)
	rm -rf $(BUILD)/dist
	@echo "$(DIST_TARBALL): $$(du -h $(DIST_TARBALL) | cut -f1)"

# Unpacks the tarball into a temp dir and, with no network for cargo and an empty CARGO_HOME
# (no registry cache to fall back on), builds the module, loads it, runs the busted specs
# and installs into a DESTDIR: the tarball is complete.
distcheck: dist
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	tar -xzf $(DIST_TARBALL) -C "$$tmp"; \
	cd "$$tmp/$(DIST_NAME)"; \
	export CARGO_NET_OFFLINE=true CARGO_HOME="$$tmp/cargo-home"; \
	$(MAKE) --no-print-directory build check-lib LUA_VERSION=$(LUA_VERSION); \
	$(MAKE) --no-print-directory test-lua LUA_VERSION=$(LUA_VERSION); \
	$(MAKE) --no-print-directory install LUA_VERSION=$(LUA_VERSION) DESTDIR="$$tmp/root" PREFIX=/usr; \
	test -f "$$tmp/root/usr/lib/prosody/modules/mod_minimix/minimix.so"; \
	echo "distcheck: $(DIST_TARBALL) builds offline, its specs pass, it installs"

# The Debian package (debian/), built with dpkg-buildpackage from the release tarball in
# build/deb/ (offline, vendored crates); the .deb lands in build/deb/. cargo comes from PATH
# (rustup), see debian/README.source.
DEB_DIR := $(BUILD)/deb
deb: dist
	@test "$$(dpkg-parsechangelog -l debian/changelog -S Version)" = "$(VERSION)" || \
	  { echo "debian/changelog's version is not Cargo.toml's $(VERSION)" >&2; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)
	tar -xzf $(DIST_TARBALL) -C $(DEB_DIR)
	cd $(DEB_DIR)/$(DIST_NAME) && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_DIR)/$(DIST_NAME)
	ls $(DEB_DIR)/*.deb

# The .deb installed with dpkg (needs root), then tests/packaging/test_deb.py: Debian's
# Prosody with no plugin_paths loads it and serves a join; the package is removed again.
DEB_FILE = $(DEB_DIR)/prosody-mod-minimix_$(VERSION)_$(shell dpkg --print-architecture).deb
test-deb: deb
	dpkg -i $(DEB_FILE)
	status=0; MINIMIX_DEB=$(CURDIR)/$(DEB_FILE) PROSODY=$(PROSODY) PROSODYCTL=$(PROSODYCTL) \
		$(PYTHON) -m pytest -q tests/packaging/test_deb.py || status=$$?; \
	dpkg -r prosody-mod-minimix >/dev/null; exit $$status
