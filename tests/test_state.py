"""The debug-state block read from the running kernel: real values, clear errors when the block
is wrong, the seqlock honoured, the event ring in order. Offsets come from the layout only."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import struct

import pytest

from conftest import SETTINGS
from live import held_machine
from workbench import config
from workbench.gdb import Gdb
from workbench import state
from workbench.state import DebugStateError, QmpMemory


def run(coroutine):
    return asyncio.run(coroutine)


def test_live_state_from_the_running_kernel():
    async def scenario():
        async with held_machine() as (machine, reader, memory):
            mapped = await reader.read(memory)
            dumped = await reader.read(QmpMemory(machine))  # the pmemsave path agrees
            # Small reads go through HMP `xp`: the same bytes as the RAM file (the magic is fixed).
            for size in (8, 3):
                assert await QmpMemory(machine).read(reader.address, size) == await memory.read(reader.address, size)
            ticks = [mapped.cpus[0].ticks]
            for _ in range(20):  # the kernel's timer moves these
                await asyncio.sleep(0.1)
                ticks.append((await reader.read(memory)).cpus[0].ticks)
            return mapped, dumped, ticks, reader

    mapped, dumped, ticks, reader = run(scenario())
    for kernel in (mapped, dumped):
        assert kernel.raw.magic == reader.expected_magic
        assert kernel.raw.magic.to_bytes(8, "little") == b"KWASTDBG"
        assert kernel.raw.layout_version == reader.expected_version
        assert kernel.cpu_count == 1
        assert [cpu.index for cpu in kernel.cpus] == [0] and kernel.cpus[0].online == 1
        assert kernel.sequence % 2 == 0 and kernel.sequence > 0
        assert kernel.threads and all(thread.id != 0 for thread in kernel.threads)  # free rows hidden
        assert len(kernel.events) == min(kernel.events_written, len(kernel.raw.events))
        names = {thread.name: thread for thread in kernel.threads}
        assert {"kmain", "idle"} <= set(names), names
        assert str(names["kmain"].state) in ("Sleeping", "Running", "Ready"), names["kmain"]
    assert ticks == sorted(ticks), f"cpu 0 ticks went backwards: {ticks}"
    assert ticks[-1] > ticks[0], f"the timer keeps counting while the guest runs: {ticks}"
    # How fast a snapshot is gets measured and printed by `kwast-bench bench`, not asserted here.


@pytest.mark.parametrize("count", [2, 4, 8, 64])
def test_every_cpu_of_the_machine_comes_online(count):
    # The MADT names them, INIT/STARTUP brings each up through the trampoline, and each is
    # in the debug state's CPU rows, in order, with the boot CPU first.
    async def scenario():
        cpu = dataclasses.replace(config.load(SETTINGS.default_config).cpu, count=count)
        async with held_machine(cpu=cpu) as (machine, reader, memory):
            # Up to a minute: one host thread runs every vCPU, and a loaded 2-core host (the
            # suite's other worker) once brought up 17 of 64 in ten seconds.
            for _ in range(600):
                if f"cpus: {count} online\n" in machine.serial_text.replace("\r", ""):
                    break
                await asyncio.sleep(0.1)
            return await reader.read(memory), machine.serial_text

    kernel, serial = run(scenario())
    assert f"\ncpus: {count} online\n" in serial.replace("\r", ""), serial[-1500:]
    for index in range(1, count):
        assert f"cpu {index} online (APIC id {index})" in serial
    assert "did not answer" not in serial
    assert kernel.cpu_count == count
    assert [(cpu.index, cpu.online) for cpu in kernel.cpus] == [(index, 1) for index in range(count)]


def test_a_cpu_that_does_not_answer_is_named_and_the_rest_run_without_it():
    # `cpu.phantom=200` has the boot CPU start APIC id 200 first, as firmware that lists a CPU
    # that is not there: it times out, is named, and the real second CPU takes its index.
    async def scenario():
        cpu = dataclasses.replace(config.load(SETTINGS.default_config).cpu, count=2)
        async with held_machine(cpu=cpu, cmdline="cpu.phantom=200") as (machine, reader, memory):
            for _ in range(100):
                if "cpus: 2 online\n" in machine.serial_text.replace("\r", ""):
                    break
                await asyncio.sleep(0.1)
            return await reader.read(memory), machine.serial_text.replace("\r", "")

    kernel, serial = run(scenario())
    assert re.search(r"\ncpu 1 \(APIC id 200\) did not answer in \d+ ms: running without it\n"
                     r"cpu 1 online \(APIC id 1\)\ncpus: 2 online\n", serial), serial[-1500:]
    assert [(cpu.index, cpu.online) for cpu in kernel.cpus] == [(0, 1), (1, 1)]
    assert "kmain" in {t.name for t in kernel.threads}


async def _corrupt_and_read(field: str, value: int):
    """Writes `value` into `field` of the live block through GDB, then takes a snapshot."""
    async with held_machine() as (machine, reader, memory):
        member = reader.layout.member(field)
        address = reader.address + member.offset
        raw = value.to_bytes(member.type.size, "little")
        reader.patience = 0.2
        # Attaching stops the guest; read while it is stopped, so the kernel cannot repair the field.
        with Gdb(reader.elf_path, machine.gdb_socket) as gdb:
            gdb.write_memory(address, raw)
            assert gdb.read_memory(address, len(raw)) == raw
            return await reader.read(memory)


def test_corrupted_magic_is_a_clear_error():
    with pytest.raises(DebugStateError, match=r"magic is 0x0 expected 0x474244545341574b .*memory corrupted"):
        run(_corrupt_and_read("magic", 0))


def test_corrupted_layout_version_is_a_clear_error():
    with pytest.raises(DebugStateError, match=r"layout version is 4242, expected \d+ .*not this build"):
        run(_corrupt_and_read("layout_version", 4242))


def test_sequence_left_odd_is_a_clear_error_after_bounded_retries():
    with pytest.raises(DebugStateError, match=r"sequence was odd or changing for 0.2 s \(\d+ reads, last 0x7\).*stopped inside an update"):
        run(_corrupt_and_read("sequence", 7))


def test_block_before_the_kernel_is_loaded_is_reported_not_decoded():
    async def scenario():
        async with held_machine(run=False) as (machine, reader, memory):  # held at reset: RAM still empty
            return await reader.read(memory)

    with pytest.raises(DebugStateError, match="magic is 0x0 expected"):
        run(scenario())


def test_event_ring_wraps_oldest_to_newest():
    async def scenario():
        async with held_machine() as (machine, reader, memory):
            layout = reader.layout
            ring = layout.member("events").type
            event = ring.element
            kinds = {name: value for value, name in event.member("kind").type.names}
            base = layout.member("events").offset

            written = layout.member("events_written")
            count = ring.count + 3  # three overwritten

            def slot(i: int) -> bytes:  # slot i holds stamp 1000 + i
                data = bytearray(event.size)
                struct.pack_into("<Q", data, event.member("tsc").offset, 1000 + i)
                kind = event.member("kind")
                data[kind.offset:kind.offset + kind.type.size] = kinds["Switch"].to_bytes(kind.type.size, "little")
                return bytes(data)

            # Only the slots a read decodes (the newest EVENTS_KEPT) and the counter: writing
            # the whole ring through GDB is slow on a busy host.
            with Gdb(reader.elf_path, machine.gdb_socket) as gdb:  # the guest stays stopped meanwhile
                for first, last in ((count - state.EVENTS_KEPT, ring.count), (0, count - ring.count)):
                    gdb.write_memory(reader.address + base + first * event.size,
                                     b"".join(slot(i) for i in range(first, last)))
                gdb.write_memory(reader.address + written.offset, struct.pack("<Q", count))
                return await reader.read(memory), ring.count

    kernel, capacity = run(scenario())
    stamps = [e.tsc for e in kernel.events]
    # A read decodes the newest EVENTS_KEPT, across the wrap.
    assert stamps == ([1000 + i for i in range(3, capacity)] + [1000, 1001, 1002])[-state.EVENTS_KEPT:]
    assert kernel.events_dropped == 3 and kernel.events_written == capacity + 3
    assert {e.kind for e in kernel.events} == {"Switch"}



async def _collect_events(reader, memory, seen: dict, done, timeout: float):
    """Adds events, numbered from the first ever written, to `seen` from snapshots taken back to
    back (a few reads a millisecond keep up with the small ring) until `done(events)`: then the
    last snapshot, or None after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        kernel = await reader.read(memory)
        seen.update(enumerate(kernel.events, kernel.events_written - len(kernel.events)))
        if done(list(seen.values())):
            return kernel
        await asyncio.sleep(0.001)
    return None


def test_irq_delivery_and_restart_are_events():
    """desktop.yaml: a key press is an Irq event on line 1 once ps2 has bound it; F12 crashes
    ps2, and init starting it again is a Restart event naming the new and the old process."""
    def of_kind(events, kind):
        return [e for e in events if e.kind == kind]

    def ps2_processes(kernel):
        return [t.process for t in kernel.threads if t.name == "ps2"]

    async def scenario():
        async with held_machine(config_path=SETTINGS.configs_dir / "desktop.yaml") as (machine, reader, memory):
            seen: dict = {}

            async def press(key: str) -> None:
                await machine.command("send-key", {"keys": [{"type": "qcode", "data": key}]})

            # Until ps2 has bound IRQ 1, a key press is counted but delivered to no one.
            for _ in range(120):
                await press("a")
                if await _collect_events(reader, memory, seen, lambda events: of_kind(events, "Irq"), 0.5):
                    break
            else:
                raise AssertionError("no Irq event after a minute of key presses")
            old = ps2_processes(await reader.read(memory))
            await press("f12")
            restarted = await _collect_events(reader, memory, seen, lambda events: of_kind(events, "Restart"), 60)
            assert restarted, f"no Restart event; kinds seen: {sorted({str(e.kind) for e in seen.values()})}"
            # The old ps2's row is freed once its thread is off the CPU: then only the new one shows.
            new = of_kind(seen.values(), "Restart")[0].a
            for _ in range(100):
                kernel = await reader.read(memory)
                if ps2_processes(kernel) == [new]:
                    break
                await asyncio.sleep(0.05)
            return list(seen.values()), old, kernel

    events, old, kernel = run(scenario())
    irq = of_kind(events, "Irq")[0]
    assert (irq.thread, irq.a) == (0, 1), dict(irq)
    restart = of_kind(events, "Restart")[0]
    assert len(old) == 1 and restart.b == old[0] != restart.a, (dict(restart), old)
    assert any(e.a == old[0] for e in of_kind(events, "Trap")), "ps2's death is a Trap event first"
    init = next(t.id for t in kernel.threads if t.name == "init")
    assert restart.thread == init, "the restart is init's doing"
    assert ps2_processes(kernel) == [restart.a], "only live rows: the old ps2's row is hidden"
