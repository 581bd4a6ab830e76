"""GDB on the real kernel in real QEMU: breakpoints by symbol and file:line are hit from reset,
stepping works, async stops arrive as events, and each command answers in milliseconds."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from elftools.elf.elffile import ELFFile

from conftest import SETTINGS
from live import held_machine
from workbench.gdb import Gdb, GdbError, TargetGone


def in_held_machine(body, run: bool = False):
    """Runs `body(gdb, reader)` with GDB attached to a machine still held at reset (-S)."""
    async def scenario():
        async with held_machine(run=run) as (machine, reader, _):
            with Gdb(reader.elf_path, machine.gdb_socket) as gdb:
                return await asyncio.to_thread(body, gdb, reader)

    return asyncio.run(scenario())


def run_to_kmain(gdb: Gdb) -> dict:
    number = gdb.break_at("kmain")
    mark = len(gdb.events)
    gdb.cont()
    stopped = gdb.wait_stopped(timeout=30, after=mark)
    assert stopped["reason"] == "breakpoint-hit" and stopped["bkptno"] == str(number), stopped
    return stopped


def test_breakpoint_on_kmain_is_hit_and_named_in_the_backtrace():
    def body(gdb, reader):
        stopped = run_to_kmain(gdb)
        frames = gdb.backtrace()
        registers = gdb.registers()
        # kmain's first instructions may belong to a function inlined into it (GDB then shows
        # that one as frame 0): look kmain's frame up by name.
        level = next(int(f["level"]) for f in frames if f["func"].endswith("kmain"))
        gdb.select_frame(level)
        magic = gdb.evaluate("magic")  # kmain's first argument: the Multiboot loader's magic
        # The async record reached us as an event too, not only through wait_stopped.
        assert any(e.get("message") == "stopped" for e in gdb.events)
        return stopped, frames, registers, magic

    stopped, frames, registers, magic = in_held_machine(body)
    kmain = [f for f in frames if f["func"].endswith("kmain")]
    assert kmain and kmain[0]["file"].endswith("main.rs"), frames
    assert all(f["func"] != "??" for f in frames[:int(kmain[0]["level"]) + 1]), frames  # symbols up to kmain
    assert registers["rip"] == int(stopped["frame"]["addr"], 16) == int(frames[0]["addr"], 16)
    assert int(magic) == 0x2BADB002  # the Multiboot specification's value, as the loader passed it


def test_file_line_breakpoint_step_next_and_finish():
    source = (SETTINGS.kernel_dir / "src/main.rs").read_text().splitlines()
    # A line kmain reaches after its first one (where `break kmain` stops), found by its text.
    line = next(i for i, text in enumerate(source, 1) if '"command line:' in text)

    def body(gdb, reader):
        run_to_kmain(gdb)
        gdb.break_at(f"main.rs:{line}")
        mark = len(gdb.events)
        gdb.cont()
        at_line = gdb.wait_stopped(timeout=30, after=mark)
        nexted = gdb.next()
        # Step until we are in a real call (not only code inlined into kmain: an inlined frame
        # shares its caller's address), then finish back to the return address.
        for _ in range(500):
            stepped = gdb.step()
            frames = gdb.backtrace()
            if len(frames) > 1 and frames[0]["addr"] != frames[1]["addr"]:
                break
        else:
            raise AssertionError("stepping from kmain never entered a called function")
        return_address = int(frames[1]["addr"], 16)
        finished = gdb.finish()
        return at_line, nexted, stepped, return_address, finished

    at_line, nexted, stepped, return_address, finished = in_held_machine(body)
    assert at_line["reason"] == "breakpoint-hit" and at_line["frame"]["line"] == str(line), at_line
    assert nexted["reason"] == "end-stepping-range" and nexted["frame"]["func"].endswith("kmain")
    assert stepped["reason"] == "end-stepping-range"
    assert finished["reason"] == "function-finished" and int(finished["frame"]["addr"], 16) == return_address, finished


def test_interrupt_a_running_kernel_and_read_its_state_block():
    def body(gdb, reader):
        gdb.cont()
        time.sleep(0.3)
        stopped = gdb.interrupt()
        seq = gdb.read_memory(reader.address + reader.layout.offset_of("sequence"), 8)
        magic = gdb.read_memory(reader.address, 8)
        return stopped, seq, magic

    stopped, seq, magic = in_held_machine(body, run=True)
    assert stopped["reason"] == "signal-received" and stopped["signal-name"] == "SIGINT"
    assert magic == b"KWASTDBG"
    assert int.from_bytes(seq, "little") % 2 == 0


def test_a_target_that_ends_while_gdb_waits_for_its_stop_fails_the_wait_at_once():
    # QEMU gone (killed here; a hung replay's QEMU is ended so): no stop will come.
    async def scenario():
        async with held_machine(run=True) as (machine, reader, _):
            with Gdb(reader.elf_path, machine.gdb_socket) as gdb:
                mark = len(gdb.events)
                gdb.cont()
                machine.process.kill()
                began = time.monotonic()
                with pytest.raises(TargetGone, match="QEMU ended"):
                    await asyncio.to_thread(gdb.wait_stopped, 60, mark)
                return time.monotonic() - began

    assert asyncio.run(scenario()) < 30


def test_commands_answer_in_order_and_errors_are_clear():
    # How fast a round trip is, `kwast-bench bench` measures and prints; here: each command gets
    # its own answer, many times over, and a bad one a clear error.
    def body(gdb, reader):
        answers = [gdb.evaluate(f"{n} * 3") for n in range(100)]
        with pytest.raises(GdbError, match=r"No symbol .*no_such_thing"):
            gdb.evaluate("no_such_thing")
        return answers

    answers = in_held_machine(body)
    assert [int(a) for a in answers] == [n * 3 for n in range(100)]


def test_missing_gdbstub_socket_is_a_clear_error(tmp_path):
    with pytest.raises(GdbError, match=r"no gdbstub socket at .*still running"):
        with Gdb(SETTINGS.kernel_elf, tmp_path / "gdb.sock"):
            pass


def test_console_commands_for_scripting():
    def body(gdb, reader):
        gdb.console("break kmain")
        output = gdb.console("continue")  # returns once stopped
        return output, gdb.console("bt")

    output, backtrace = in_held_machine(body)
    assert "Breakpoint 1" in output
    assert re.search(r"^#\d+ .*kmain", backtrace, re.M), backtrace


def test_every_cpu_is_a_thread_each_running_kernel_code():
    """Four CPUs, four GDB threads: stopped while the machine runs, each is somewhere in the
    kernel (its idle loop, most likely), with its own registers."""
    async def scenario():
        config_path = SETTINGS.configs_dir / "smp4.yaml"
        async with held_machine(run=True, config_path=config_path) as (machine, reader, _):
            with Gdb(reader.elf_path, machine.gdb_socket) as gdb:
                def body():
                    gdb.cont()
                    time.sleep(0.3)
                    gdb.interrupt()
                    threads = gdb.console("info threads")
                    stacks = gdb.console("thread apply all bt 1")
                    pcs = gdb.console("thread apply all p/x $pc")
                    return threads, stacks, pcs
                return await asyncio.to_thread(body)

    threads, stacks, pcs = asyncio.run(scenario())
    cpus = re.findall(r"CPU#(\d+)", threads)
    assert sorted(set(cpus)) == ["0", "1", "2", "3"], threads
    frames = re.findall(r"^#0 ", stacks, re.M)
    # Kernel code by where each CPU is, not by the name of its innermost frame: that may be a
    # function of Rust's core library the kernel inlined (`core::sync::atomic::atomic_load`).
    with open(SETTINGS.kernel_elf, "rb") as file:
        text = ELFFile(file).get_section_by_name(".text")
        start, end = text["sh_addr"], text["sh_addr"] + text["sh_size"]
    addresses = [int(pc, 16) for pc in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", pcs, re.M)]
    assert len(frames) == 4 and len(addresses) == 4, (stacks, pcs)
    assert all(start <= pc < end for pc in addresses), (f"kernel .text is {start:#x}..{end:#x}", pcs, stacks)
