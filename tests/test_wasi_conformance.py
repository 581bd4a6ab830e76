"""Ordinary C programs behave in Kwast as under wasmtime's own WASI: the conformance programs
(servers/wasi_*) run in one boot of the real kernel and, each on its own, in wasmtime's WASI
on the host (tests/wasi_reference.py); their console lines and how they ended must match line
by line."""

from __future__ import annotations

import difflib
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SETTINGS, assert_clean_exit, booter
from workbench.config import Server

PROGRAMS = [
    Server(name="wasi_raw"),
    Server(name="wasi_stdio"),
    Server(name="wasi_env", args=["first", "second"]),
    Server(name="wasi_memory"),
    Server(name="wasi_exit", args=["5"]),
    Server(name="wasi_abort"),
]


def kwast_runs(serial: str) -> dict[str, dict]:
    """Each server's console lines and ending, taken apart from one boot's serial log."""
    runs = {p.name: {"lines": [], "ending": None} for p in PROGRAMS}
    for line in serial.splitlines():
        if (match := re.match(r"^\[(\w+)\] (.*)$", line)) and match[1] in runs:
            runs[match[1]]["lines"].append(match[2])
        elif (match := re.match(r"^server (\w+) exited with code (\d+)$", line)) and match[1] in runs:
            runs[match[1]]["ending"] = f"exit {match[2]}"
        elif (match := re.match(r"^server (\w+) killed: (.*)$", line)) and match[1] in runs:
            runs[match[1]]["ending"] = f"trap: {match[2]}"
    return runs


def reference_run(server: Server) -> dict:
    command = [sys.executable, str(Path(__file__).with_name("wasi_reference.py")), str(SETTINGS.server_wasm(server.name)),
               server.name, str(server.memory), *server.args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    output = done.stdout.strip().splitlines()
    assert output, f"the reference run of {server.name} printed nothing:\n{done.stderr}"
    return json.loads(output[-1])


@pytest.fixture(scope="module")
def kwast(kernel_image, default_config):
    """One boot serves every program here."""
    outcome = booter(kernel_image, default_config)(servers=PROGRAMS, timeout=120)
    assert_clean_exit(outcome)
    return kwast_runs(outcome.serial)


@pytest.mark.parametrize("server", PROGRAMS, ids=lambda s: s.name)
def test_same_as_wasmtime(kwast, server):
    expected, got = reference_run(server), kwast[server.name]
    want = expected["lines"] + [f"(ends) {expected['ending']}"]
    have = got["lines"] + [f"(ends) {got['ending']}"]
    if want != have:
        first = next(i for i, (a, b) in enumerate(itertools.zip_longest(want, have)) if a != b)
        diff = "\n".join(difflib.unified_diff(want, have, "wasmtime", "kwast", lineterm=""))
        pytest.fail(f"{server.name}: line {first + 1} differs: wasmtime {want[first:first + 1]} kwast "
                    f"{have[first:first + 1]}\n{diff}")
