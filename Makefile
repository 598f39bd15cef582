# unlite — see README.md. Every target is idempotent.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
NNF_SRC := $(wildcard nnf/*/template.json)
NNF_PKG := $(patsubst nnf/%/template.json,build/nnf/%.tgz,$(NNF_SRC))

.PHONY: all install deps bytecode catalog demo test unit test-kernel lint bench clean openwrt-userland obuspa
all: install

deps:                       ## system packages (Debian; needs root)
	sh tools/install-deps.sh

install: $(BIN)/.installed bytecode catalog   ## .venv with the runtime + test tools, packed NNF catalog

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

bytecode: $(BIN)/.installed   # a router runs from .pyc: so does the daemon here
	$(BIN)/python -m compileall -q unlite

catalog: $(NNF_PKG)

build/nnf/%.tgz: nnf/%/* $(BIN)/.installed
	@mkdir -p build/nnf
	$(BIN)/unlite nnf pack nnf/$* -o $@

# OpenWrt's own programs for the tests (ubusd, rpcd, uhttpd, procd, LuCI, opkg, usign, apk,
# python-ubus), built from ../shared/third_party/openwrt; cached by their tarballs' sha256
OPENWRT_BUNDLE   ?= ../shared/third_party/openwrt
OPENWRT_USERLAND ?= /opt/openwrt-userland
openwrt-userland:
	@if [ -f $(OPENWRT_BUNDLE)/build.sh ]; then \
		sh $(OPENWRT_BUNDLE)/build.sh $(OPENWRT_BUNDLE)/src $(OPENWRT_USERLAND) core luci pyubus apk; \
	else echo "no $(OPENWRT_BUNDLE): the tests on OpenWrt's own programs will be skipped"; fi

# obuspa, the Broadband Forum's USP agent, as the Broker of the USP tests: built from
# ../shared/third_party/usp/obuspa.tar.gz into /opt/obuspa, cached by the tarball's sha256
OBUSPA_TARBALL ?= ../shared/third_party/usp/obuspa.tar.gz
OBUSPA_DIR     ?= /opt/obuspa
obuspa:                     ## build obuspa once per machine (the USP tests' Broker)
	sh tools/build-obuspa.sh $(OBUSPA_TARBALL) $(OBUSPA_DIR)

demo: deps install          ## a gateway in namespaces: firewall → NAT between LAN and WAN
	$(BIN)/python tools/demo.py $(DEMO_ARGS)

test: deps install openwrt-userland   ## unit + integration tests (real namespaces, OpenWrt's programs; root)
	$(BIN)/python -m pytest -q tests

# the tests marked kernel, in the files that hold them (collecting the others costs ~30 s
# under emulation); KERNEL_TESTS=tests/test_gre.py to pick
KERNEL_TESTS ?= $(shell grep -l "pytest.mark.kernel" tests/test_*.py)
test-kernel: install        ## the kernel-feature tests under a full kernel in a QEMU VM (../shared/klab)
	sh tools/klab.sh $(BIN)/python -m pytest -q -p no:cacheprovider -m kernel -rs $(KERNEL_TESTS)

lint: $(BIN)/.installed        ## ruff (pyflakes, pycodestyle, bugbear) and mypy (pyproject.toml)
	$(BIN)/ruff check unlite tools tests
	$(BIN)/mypy

# bytecode (and pytest's rewritten test modules) cached in build/, even where the
# environment says PYTHONDONTWRITEBYTECODE: rewriting every test module is ~3 s of the tier
unit: $(BIN)/.installed         ## the tests that need no root and no namespace (seconds)
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/build/pycache \
		$(BIN)/python -m pytest -q -m "not root" tests

bench: deps install         ## start overhead, chain deploy, daemon RSS; backends side by side
	$(BIN)/python tools/bench.py
	$(BIN)/python tools/bench_backends.py
	$(BIN)/python tools/bench_ubus.py
	$(BIN)/python tools/bench_restart.py
	$(BIN)/python tools/bench_teardown.py
	$(BIN)/python tools/bench_scale.py
	$(BIN)/python tools/bench_usp.py

clean:
	rm -rf build $(VENV) .pytest_cache

.PHONY: feed feed-opkg feed-apk
feed: feed-opkg feed-apk    ## both OpenWrt repositories: build/feed (opkg, 24.10) and build/feed-apk (apk, 25.12+)

feed-opkg:                  ## OpenWrt ipks + signed opkg feed in build/feed (FEED_KEY=usign secret key)
	$(PY) tools/feed.py -o build/feed $(if $(FEED_KEY),--key $(FEED_KEY))

# apk-tools v3 from make openwrt-userland (or APK=/path/to/apk)
feed-apk:                   ## apk v3 packages + signed packages.adb in build/feed-apk (APK_KEY=ECDSA P-256 PEM)
	OPENWRT_USERLAND=$(OPENWRT_USERLAND) $(PY) tools/apk.py -o build/feed-apk \
		$(if $(APK_KEY),--key $(APK_KEY)) $(if $(APK),--apk $(APK))

.PHONY: bench-paper
bench-paper: deps install   ## the paper's Table IV on Fig. 4's testbed: IPsec client, firewall, NAT → results/paper/
	sh tools/ipsec-deps.sh
	$(BIN)/python tools/bench_paper.py $(PAPER_ARGS)

.PHONY: bench-paper-kernel
bench-paper-kernel: install  ## the IPsec client on kernel ESP beside kernel-libipsec, under a full kernel (VM) → results/paper-kernel/
	sh tools/klab.sh $(BIN)/python tools/bench_paper.py --nf ipsec --esp both --runs 3 \
		--out results/paper-kernel $(PAPER_ARGS)

.PHONY: soak
soak: deps install          ## 20 clients × 60 s on a live daemon, then 30 s beside an attack mix: errors, latency, RSS, leaks
	$(BIN)/python tools/soak.py $(SOAK_ARGS)
