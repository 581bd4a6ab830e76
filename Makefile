# Kwast's two entry points. Both install what is missing first (scripts/setup, idempotent).
#   make run   build, then open the workbench (TUI) on the default config
#   make test  build, then run every test (kernel tests and scenarios in QEMU included)

VENV := .venv/bin
JOBS ?= 2

.PHONY: run test setup build

setup:
	@scripts/setup

build: setup
	$(VENV)/kwast-bench build

run: build
	$(VENV)/kwast-bench

test: build
	$(VENV)/pytest -n $(JOBS)
