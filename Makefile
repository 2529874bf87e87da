# ari_app: `make run` sets up and runs everything; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# mmdebstrap builds the Asterisk root (the Debian keyring lets it do so on Ubuntu too);
# sip-tester is SIPp, the callers of the tests and of `make call`;
# espeak-ng and sox speak the project's own prompts (`ari-app prompts build`); baresip is
# the agents' softphone in the ACD tests; gdb takes the stacks of an Asterisk that stops answering in a test
APT_PACKAGES := mmdebstrap debian-archive-keyring sip-tester espeak-ng sox baresip gdb
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# extra pytest arguments, e.g. make test PYTEST_ARGS="-k first_call -x"
PYTEST_ARGS ?=

.PHONY: help deps venv services asterisk run call test lint unit integration bench clean

help:
	@echo "make run    set up everything (packages, virtualenv, local Asterisk) and run the service"
	@echo "make call   place a call to the demo number 100 through the running stack"
	@echo "make test   lint, type-check and run every test (unit, database, real Asterisk + SIPp)"
	@echo "make bench  the benchmarks whose figures are in the README"
	@echo "make clean  stop the local Asterisk and remove the virtualenv"

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# PostgreSQL and Mosquitto are used by the tests; start them if they are installed but stopped.
services:
	@if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1; then \
	  $(SUDO) pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; fi
	@if command -v mosquitto >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then \
	  $(SUDO) mosquitto -d -c /etc/mosquitto/mosquitto.conf; fi

asterisk: deps venv
	$(BIN)/ari-app asterisk up
	$(BIN)/ari-app prompts build

run: asterisk
	@echo
	@echo "The demo flow (dialplan/flows/demo.yaml) answers 100: 1 billing (accounts 123456,"
	@echo "555000 have a balance), 2 support, 0 operator. Its balance lookup asks the demo"
	@echo "backend, which runs beside the service on 127.0.0.1:8090."
	@echo "Call the demo number 100 from another terminal:  make call"
	@echo "or with SIPp directly (the simulated carrier trunk is 127.0.0.2):"
	@echo "  sipp 127.0.0.1:5060 -sf tests/sipp/caller.xml -i 127.0.0.2 -p 5070 -s 100 \\"
	@echo "       -key caller 5551234 -key rtp_port 40000 -m 1 -recv_timeout 120s -nostdin"
	@echo
	$(BIN)/ari-app demo-backend --port 8090 & backend=$$!; trap 'kill $$backend' EXIT; \
	$(BIN)/ari-app --env-file "$$($(BIN)/ari-app asterisk env)" run

# make call KEYS="1,,123456#": press keys (a comma waits 3 s more; see --help);
# CALLER=5557777 calls as an ordinary caller (the default 5551234 is a test line, open 24/7)
KEYS ?=
CALLER ?= 5551234
call: venv
	$(BIN)/python -m tests.integration.telephony --sip-port 5060 --caller $(CALLER) --keys "$(KEYS)"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit tests/db $(PYTEST_ARGS)

integration: deps venv services
	$(BIN)/ari-app asterisk build
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test: deps venv services lint
	$(BIN)/ari-app asterisk build
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps venv services
	$(BIN)/python -m tests.bench.ivr_engine
	@echo
	$(BIN)/python -m tests.bench.routing
	@echo
	$(BIN)/python -m tests.bench.kpi
	@echo
	$(BIN)/ari-app asterisk build
	$(BIN)/python -m tests.bench.ari_messages
	@echo
	$(BIN)/python -m tests.bench.load

clean:
	-$(BIN)/ari-app asterisk down
	rm -rf $(VENV)
