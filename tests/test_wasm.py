"""Wasm servers in ring 0: the hello server's WASI, and the kernel refusing artifacts it was not
built with. Each fault class killing only its server is scenarios/faults.yaml (the one table of
kill reasons); an artifact per CPU model, scenarios/boot.yaml."""

from __future__ import annotations

import re
import time

from conftest import SETTINGS, assert_clean_exit
from workbench.config import Server


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
    assert re.search(r"^server hello: hello\.cwasm ready in \d+ us, \d+ cycles \(\d+ bytes, first start, code at 0x[0-9a-f]+\) at TSC \d+$", out, re.M)
    assert "server hello exited with code 0" in out


def test_two_servers_get_their_own_arguments(boot):
    outcome = boot(servers=[Server(name="hello", args=["first"]), Server(name="ticker", args=["3"])])
    assert_clean_exit(outcome)
    assert "[hello] arg 1: first" in outcome.serial
    assert "[ticker] tick 3" in outcome.serial and "[ticker] tick 4" not in outcome.serial


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
