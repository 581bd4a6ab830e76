"""Recording scenario runs and replaying them (workbench/replay.py), in real QEMU: the replay's
console is the recording's byte for byte, its steps are judged as the recorded ones were (a
pass as a pass, a failure at the same step with the same report), a recording of another
build is refused, steps that cannot be recorded are named before anything runs, and GDB on a
replay goes back and forward to the same state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import debug_port, dwarf, replay
from workbench.gdb import Gdb, GdbError, TargetGone
from workbench.qemu import Machine
from workbench.scenario import model, runner
from workbench.yamlmodel import ConfigError

RECORDED = Path(__file__).parent / "recorded"
KWAST_BENCH = Path(sys.executable).parent / "kwast-bench"


def record(settings, name: str, folder: Path) -> runner.Result:
    [scenario] = model.load(RECORDED / f"{name}.yaml")
    return asyncio.run(runner.run(scenario, settings, folder, record=True))


def kwast_bench(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(KWAST_BENCH), *args], capture_output=True, text=True, cwd=settings.root, timeout=600)


def test_keys_and_a_kill_replay_byte_for_byte_and_pass_again(settings, tmp_path):
    folder = tmp_path / "keys-and-kill"
    recorded = record(settings, "keys-and-kill", folder)
    assert recorded.passed, recorded.report()
    assert recorded.recording == folder / "recording"
    assert {p.name for p in recorded.recording.iterdir()} == {"recording.json", "replay.bin", "serial.bin", "scenario.yaml"}
    recording = json.loads((recorded.recording / "recording.json").read_text())
    # The kill went to the kernel's debug port, COM2, whose input QEMU's log keeps.
    assert recording["steps"][5]["said"] == "asked the kernel to kill console (process 2)"
    assert "chardev:debugport" in recording["argv"]

    done = kwast_bench(settings, "replay", str(folder))
    assert done.returncode == 0, done.stdout + done.stderr
    size = len((recorded.recording / "serial.bin").read_bytes())
    assert f"serial output: identical to the recording ({size} bytes)" in done.stdout
    assert "judgement: the same as the recording: PASS" in done.stdout
    assert "server console killed: killed on request" in (folder / "replay" / "serial.log").read_text()
    assert (folder / "replay" / "serial.log").read_bytes() == (folder / "serial.log").read_bytes()


def test_the_debug_port_writes_only_into_the_kernels_data(settings, kernel_image, default_config, tmp_path):
    # Frames a recording machine's debug port gets that the kernel must refuse (a write outside
    # its data, one longer than it takes, one cut short) are named on the console, and the
    # kernel takes the next one.
    port = debug_port.of(kernel_image.path)
    control = dwarf.variable(kernel_image.path, "KWAST_DEBUG_CONTROL")
    field = control.address + control.type.member("corrupt_next_message").offset
    outside = port.frames(0x1000, b"\xff")[0]
    too_long = bytearray(port.frames(field, b"\0")[0])
    length = port.header.member("length")
    too_long[length.offset:length.offset + 2] = (port.max_write + 1).to_bytes(2, "little")
    cut_short = port.frames(field, bytes(4))[0][:-2]

    async def line(machine: Machine, text: str) -> None:
        deadline = time.monotonic() + 60
        while not any(text in line for line in machine.serial_lines):
            assert time.monotonic() < deadline, f"no line with {text!r}:\n{machine.serial_text}"
            await asyncio.sleep(0.05)

    async def run() -> list[str]:
        async with Machine(settings, default_config, kernel_image, "hold", rr="record", rr_file=tmp_path / "replay.bin") as machine:
            await machine.resume()
            await line(machine, "server hello exited")
            await machine.debug_port_send(outside + bytes(too_long) + bytes(port.max_write + 1) + cut_short)
            await line(machine, "debug port: an incomplete frame")
            await machine.debug_port_write(field, (1).to_bytes(4, "little"))  # no message is sent now to take it
            assert await machine.read_memory(field, 4) == (1).to_bytes(4, "little")
            assert await machine.status() == "running"
            return machine.serial_lines

    refused = [line for line in asyncio.run(run()) if line.startswith("debug port:")]
    assert len(refused) == 3, refused
    assert refused[0].startswith("debug port: a write of 1 bytes at 0x1000 refused: outside the kernel's data")
    assert refused[1] == f"debug port: a write of {port.max_write + 1} bytes refused (at most {port.max_write})"
    assert refused[2] == f"debug port: an incomplete frame of {port.header.size + 2} bytes dropped"


def test_a_failure_replays_to_the_same_step_with_the_same_report(settings, tmp_path):
    recorded = record(settings, "fails-on-purpose", tmp_path / "fails")
    assert not recorded.passed and recorded.where.startswith("step 4 at ")
    scenario, recording = replay.scenario_of(recorded.recording)
    tape = replay.Tape(recorded.recording, recording)
    replayed = asyncio.run(runner.run(scenario, settings, tmp_path / "fails" / "replay", tape=tape))
    assert replayed.serial_difference is None
    assert not replayed.passed
    assert (replayed.where, replayed.reason) == (recorded.where, recorded.reason)
    assert replay.judged_alike(recording, replayed) == []
    assert replayed.serial_tail == recorded.serial_tail


def test_a_recording_of_another_build_is_refused_with_the_digests(settings, tmp_path):
    folder = tmp_path / "fault"
    assert record(settings, "fault-killed", folder).passed
    path = folder / "recording" / "recording.json"
    data = json.loads(path.read_text())
    kernel = str(settings.kernel_elf)
    now = data["digests"][kernel]
    data["digests"][kernel] = "0" * 64
    path.write_text(json.dumps(data))
    done = kwast_bench(settings, "replay", str(folder))
    assert done.returncode == 2
    assert "different build" in done.stderr
    assert f"{kernel}: recorded {'0' * 16}, now {now[:16]}" in done.stderr
    assert not (folder / "replay" / "report.txt").exists()  # refused before any step ran


def test_steps_that_cannot_be_recorded_are_named_when_loaded(settings, tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    path = scenarios / "rewinds.yaml"
    path.write_text("name: rewinds\nconfig: configs/default.yaml\nappend: hold\nsteps:\n  - boot\n"
                    "  - snapshot: a\n  - restore: a\n  - inject: nmi\n")
    done = kwast_bench(settings, "run", "--record", str(path), "--artifacts", str(tmp_path / "art"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}:7: rewinds: step 3 (restore name='a') cannot be recorded" in done.stderr
    assert f"{path}:8: rewinds: step 4 (inject action='nmi') cannot be recorded" in done.stderr
    assert not (tmp_path / "art").exists()

    two = scenarios / "two-cpus.yaml"
    two.write_text("name: two\nconfig: configs/default.yaml\noverrides:\n  cpu: {count: 2}\nsteps:\n  - boot\n")
    done = kwast_bench(settings, "run", "--record", str(two), "--artifacts", str(tmp_path / "art"))
    assert done.returncode == 2 and f"{two}:1: two-cpus: its machine has more than one CPU" in done.stderr

    path.write_text(path.read_text().replace("append: hold\n", "append: hold\nrecord: true\n"))
    with pytest.raises(ConfigError, match="record: true, but line 8: step 3 .*restore"):
        model.load(path)


def test_gdb_on_a_replay_goes_back_and_forward_to_the_same_state(settings, tmp_path):
    folder = tmp_path / "fault"
    assert record(settings, "fault-killed", folder).passed

    async def debug() -> None:
        async with gdb_on_replay(folder, settings) as (machine, gdb):
            run = lambda command: asyncio.to_thread(gdb.console, command)  # noqa: E731
            await run("break kwast_kernel::wasm::server::finish")  # where a killed server is reported
            assert "Breakpoint 1, kwast_kernel::wasm::server::finish" in await run("continue")
            there, at = await asyncio.to_thread(gdb.registers), await machine.replay_position()
            for _ in range(3):
                await run("reverse-stepi")
            back = await asyncio.to_thread(gdb.registers)
            assert await machine.replay_position() == at - 3
            assert back["rip"] != there["rip"]
            assert "Breakpoint 1, kwast_kernel::wasm::server::finish" in await run("continue")
            assert await machine.replay_position() == at
            assert await asyncio.to_thread(gdb.registers) == there

    asyncio.run(debug())


@contextlib.asynccontextmanager
async def gdb_on_replay(folder: Path, settings):
    """The recording in `folder` replayed with snapshots, and a GDB on it as the workbench gives
    one (its ways back, `replay.gdb_commands`): (machine, gdb)."""
    async with replay.debugged(folder / "recording", settings, reverse=True) as machine:
        gdb = Gdb(machine.image.path, machine.gdb_socket, timeout=300, setup=replay.gdb_commands(machine))
        await asyncio.to_thread(gdb.start)
        try:
            yield machine, gdb
        finally:
            await asyncio.to_thread(gdb.close)


def test_reverse_continue_goes_back_to_each_earlier_breakpoint_hit_without_qemus_own(settings, tmp_path):
    # The workbench's reverse-continue (workbench/gdb_reverse.py; QEMU's deadlocks on a loaded
    # host): back to the hit before, with the registers it had, forward again over it, and with
    # no breakpoint back to the replay's first instruction.
    folder = tmp_path / "fault"
    assert record(settings, "fault-killed", folder).passed

    async def debug() -> None:
        async with gdb_on_replay(folder, settings) as (machine, gdb):
            run = lambda command: asyncio.to_thread(gdb.console, command)  # noqa: E731
            back = lambda: asyncio.to_thread(gdb.reverse_continue)  # noqa: E731
            await run("break kwast_kernel::sched::scheduler::Scheduler::switch")  # every switch
            hits = []
            for _ in range(3):
                assert "Breakpoint 1, kwast_kernel::sched::scheduler::Scheduler::switch" in await run("continue")
                hits.append((await machine.replay_position(), await asyncio.to_thread(gdb.registers)))
            assert hits[0][0] < hits[1][0] < hits[2][0]

            stop = await back()
            assert (stop["reason"], stop["bkptno"]) == ("breakpoint-hit", "1")
            assert (await machine.replay_position(), await asyncio.to_thread(gdb.registers)) == hits[1]
            assert "Breakpoint 1, " in await run("reverse-continue")  # as typed, the same command
            assert (await machine.replay_position(), await asyncio.to_thread(gdb.registers)) == hits[0]
            # Forward from a hit gone back to: GDB steps over that breakpoint to the next hit.
            assert "Breakpoint 1, " in await run("continue")
            assert (await machine.replay_position(), await asyncio.to_thread(gdb.registers)) == hits[1]

            await run("delete")
            assert (await back())["reason"] == "no-history"
            assert await machine.replay_position() == 0

            # One that cannot reach QEMU says so, and the guest stays where it was.
            await run(f"python install({str(tmp_path / 'gone.sock')!r})")
            with pytest.raises(GdbError, match="No such file or directory"):
                await back()
            assert await machine.replay_position() == 0

    asyncio.run(debug())


def test_the_replay_command_gives_gdb_the_workbenchs_ways_back(settings, tmp_path):
    # reverse-continue and reverse-finish are the workbench's (QEMU's deadlock on a loaded host);
    # reverse-step, which GDB makes of QEMU's, is refused with why.
    folder = tmp_path / "fault"
    assert record(settings, "fault-killed", folder).passed
    commands = ["break kwast_kernel::wasm::server::finish", "continue", "monitor info replay", "continue",
                "reverse-continue", "monitor info replay", "reverse-finish", "monitor info replay", "bt 1",
                "reverse-step"]
    done = kwast_bench(settings, "replay", str(folder), "--gdb", "--reverse", *(a for c in commands for a in ("--ex", c)))
    assert done.returncode == 1, done.stdout + done.stderr  # the refused reverse-step, last
    assert done.stdout.count("Breakpoint 1, kwast_kernel::wasm::server::finish") == 3, done.stdout
    first, back, called = map(int, re.findall(r"instruction count = (\d+)", done.stdout))
    assert first == back and called < back, done.stdout
    # Back at the call of `finish`, in the server thread's closure that calls it.
    assert re.search(r"#0  0x[0-9a-f]+ in kwast_kernel::wasm::server::start\S* \(\) at src/wasm/server.rs:", done.stdout), done.stdout
    assert "error: reverse-step is not offered on a replay" in done.stdout, done.stdout


def test_a_replay_whose_qemu_hangs_is_ended_and_named(settings, tmp_path, monkeypatch):
    # QEMU 7.2 can deadlock in its own reverse-continue (README): no QMP answers, no CPU used. A stopped QEMU
    # (SIGSTOP) is that to the watcher; it is ended, so GDB's wait fails instead of never returning.
    folder = tmp_path / "fault"
    assert record(settings, "fault-killed", folder).passed
    monkeypatch.setattr(replay, "HUNG_SECONDS", 2)
    notes: list[str] = []

    async def debug() -> float:
        async with replay.debugged(folder / "recording", settings, on_note=notes.append) as machine:
            with Gdb(machine.image.path, machine.gdb_socket, timeout=120) as gdb:
                mark = len(gdb.events)
                gdb.cont()
                os.kill(machine.process.pid, signal.SIGSTOP)
                began = time.monotonic()
                with pytest.raises(TargetGone):
                    await asyncio.to_thread(gdb.wait_stopped, 120, mark)
                return time.monotonic() - began

    waited = asyncio.run(debug())
    assert waited < 30
    assert any("QEMU answered nothing for 2 s and ran nothing: hung" in note for note in notes), notes


def test_pytest_records_a_failed_scenario_once_more_and_keeps_only_that(settings, tmp_path):
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "fails.yaml").write_text((RECORDED / "fails-on-purpose.yaml").read_text())
    (scenarios / "passes.yaml").write_text((RECORDED / "fault-killed.yaml").read_text() + "record: true\n")
    art = tmp_path / "art"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                           str(scenarios), "--scenario-artifacts", str(art)],
                          capture_output=True, text=True, cwd=settings.root, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "re-run with recording: it failed again" in done.stdout
    assert f"kwast-bench replay {art / 'fails.recorded'}" in done.stdout
    assert (art / "fails.recorded" / "recording" / "recording.json").is_file()
    assert not (art / "fails" / "recording").exists()      # the first run was not recorded
    assert not (art / "passes" / "recording").exists()     # a pass keeps no recording
    assert (art / "passes" / "report.txt").is_file()


def test_the_console_after_going_back_is_the_last_pass_from_the_start():
    # Going back replays from the first instruction, once or twice (reverse-continue): the
    # console bytes written meanwhile are passes from the start; the last one is what shows.
    recorded = b"Kwast booting\nserver a: ready\nserver a killed\n[init] restarting a\n"
    before = recorded.index(b"[init]")
    one = recorded[:recorded.index(b"server a killed")]
    assert replay.rewound_console(recorded, one, before) == len(one)
    assert replay.rewound_console(recorded, recorded[:before - 1] + one, before) == len(one)
    assert replay.rewound_console(recorded, b"", before) == 0  # back at the first instruction
