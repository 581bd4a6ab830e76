# Kwast's two entry points. Both install what is missing first (scripts/setup, idempotent).
#   make run   build, then boot the default config in QEMU
#   make test  build, then run every test (kernel tests and scenarios in QEMU included)

VENV := .venv/bin
JOBS ?= 2

.PHONY: run test setup build

setup:
	@scripts/setup

build: setup
	$(VENV)/kwast-bench build

run: build
	$(VENV)/kwast-bench boot

test: build
	$(VENV)/pytest -n $(JOBS)
