"""Wasm servers in ring 0: the hello server's WASI, each fault class killing only its server,
and the kernel refusing artifacts it was not built with."""

from __future__ import annotations

import re
import time

import pytest

from conftest import SETTINGS, assert_clean_exit
from workbench.config import Server

MAIN = " in __original_main \u2190 _start \u2190 _start.command_export"
# Each fault server and its kill reason: what happened, and where (from the name section).
FAULTS = {
    "fault_oob": "out of bounds memory access" + MAIN,
    "fault_null_call": "uninitialized element" + MAIN,
    "fault_bad_signature": "indirect call type mismatch" + MAIN,
    "fault_stack_overflow": "call stack exhausted in deeper \u00d720",  # wasmtime keeps 20 frames
    "fault_div_zero": "integer divide by zero" + MAIN,
    "fault_int_overflow": "integer overflow" + MAIN,
    "fault_unreachable": "wasm `unreachable` instruction executed" + MAIN,
    # Growing past the 16 MiB limit gives NULL; the write through it is the fault.
    "fault_memory_grow": "out of bounds memory access" + MAIN,
    "fault_infinite_loop": "watchdog: 1500 ms of CPU without a kernel call" + MAIN,
}
# Only a server given a watchdog is stopped for computing.
WATCHDOG = {"fault_infinite_loop": 1500}


def test_hello_server_uses_wasi(boot):
    started = time.time()
    # Guest clocks count guest instructions (-icount shift=0): the sleep's length does not
    # depend on how loaded the host is.
    outcome = boot(icount=True)
    assert_clean_exit(outcome)
    out = outcome.serial
    assert "[hello] hello from hello" in out
    assert "[hello] arg 1: world" in out
    assert re.search(r"^\[hello\] random: [0-9a-f]{16}$", out, re.M)
    slept = int(re.search(r"^\[hello\] slept (\d+) us \(asked for 10000\)$", out, re.M).group(1))
    assert 10000 <= slept < 60000
    realtime = int(re.search(r"^\[hello\] realtime: (\d+) s since 1970$", out, re.M).group(1))
    assert abs(realtime - started) < 120, "the guest's wall clock follows the host's"
    assert re.search(r"^server hello: hello\.cwasm loaded in \d+ us \(\d+ bytes\)$", out, re.M)
    assert "server hello exited with code 0" in out


def test_a_newer_cpu_model_runs_its_own_artifacts(boot, default_config):
    # Haswell artifacts use SSE4.1/4.2, POPCNT and LZCNT (never AVX: the kernel saves only SSE state).
    from workbench.config import Cpu
    outcome = boot(cpu=Cpu(model="Haswell", count=1))
    assert_clean_exit(outcome)
    assert "module hello.cwasm" in outcome.serial and "/artifacts/Haswell/hello.cwasm" in outcome.serial
    assert "server hello exited with code 0" in outcome.serial


def test_two_servers_get_their_own_arguments(boot):
    outcome = boot(servers=[Server(name="hello", args=["first"]), Server(name="ticker", args=["3"])])
    assert_clean_exit(outcome)
    assert "[hello] arg 1: first" in outcome.serial
    assert "[ticker] tick 3" in outcome.serial and "[ticker] tick 4" not in outcome.serial


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_kills_only_its_server(boot, fault):
    outcome = boot(servers=[Server(name="ticker", args=["30"]), Server(name=fault, watchdog=WATCHDOG.get(fault))], timeout=90)
    assert_clean_exit(outcome)
    lines = outcome.serial.splitlines()
    killed = f"server {fault} killed: {FAULTS[fault]}"
    assert killed in lines, outcome.serial
    # The witness keeps running after the fault, to its normal end.
    after = lines[lines.index(killed) + 1:]
    assert any(line.startswith("[ticker] tick") for line in after), outcome.serial
    assert "server ticker exited with code 0" in after
    assert not any("survived" in line for line in lines)


def test_tampered_artifact_is_refused(boot, tmp_path):
    artifact = SETTINGS.server_artifact("hello", "qemu64")
    tampered = tmp_path / "hello.cwasm"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    outcome = boot(servers=[Server(name="hello", artifact=str(tampered)), Server(name="ticker", args=["2"])])
    assert_clean_exit(outcome)
    assert re.search(r"server hello killed: artifact hello\.cwasm refused: digest [0-9a-f]{64} is not one this "
                     r"kernel was built with", outcome.serial), outcome.serial
    assert "[hello]" not in outcome.serial, "nothing of the tampered artifact ran"
    assert "server ticker exited with code 0" in outcome.serial


def test_raw_wasm_is_refused(boot):
    outcome = boot(servers=[Server(name="hello", artifact=str(SETTINGS.server_wasm("hello")))])
    assert_clean_exit(outcome)
    assert "server hello killed: artifact hello.wasm refused: not a precompiled artifact" in outcome.serial


def test_artifact_for_another_cpu_is_refused_by_wasmtime(boot):
    # Built for Haswell (SSE4.2 and more), booted on qemu64: trusted, but not for this CPU.
    haswell = SETTINGS.server_artifact("hello", "Haswell")
    outcome = boot(servers=[Server(name="hello", artifact=str(haswell))])
    assert_clean_exit(outcome)
    assert "server hello killed: artifact hello.cwasm refused by wasmtime:" in outcome.serial, outcome.serial
    assert "[hello]" not in outcome.serial
