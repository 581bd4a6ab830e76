"""The kernel state in words (workbench/state_words.py): waits resolved to what a thread waits
for, named endpoints with totals, server rows, IRQ bindings, events as sentences. Live on
configs/desktop.yaml (typing, an F12 crash); offline on a recorded snapshot; and the reader
refusing a block layout it does not know. (A caller's wait turning from `call` to `reply` once
its call is taken is the kernel test ipc_waits_and_totals_show_in_the_debug_state.)"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from conftest import SETTINGS
from live import held_machine
from workbench import dwarf
from workbench.state import DebugStateError, StateReader, from_raw, record_of
from workbench.state_words import explain, snapshot_json

# desktop.yaml's block (decoded, as JSON) after typing "hi", F12 (ps2 crashed, init restarted
# it) and "x": recorded from a live run with tests/live.py's held_machine and `kernel.raw`.
RECORDED = Path(__file__).parent / "data/desktop-state.json"


def recorded():
    """The recorded snapshot: {"ring_capacity": the kernel's EVENT_RING, "raw": the block}."""
    document = json.loads(RECORDED.read_text())
    return from_raw(record_of(document["raw"]), document["ring_capacity"])


def run(coroutine):
    return asyncio.run(coroutine)


async def _until(reader, memory, done, timeout: float, what: str):
    """Snapshots until `done(explained, kernel)`; the last one, or a failure naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        kernel = await reader.read(memory)
        said = explain(kernel)
        if done(said, kernel):
            return said
        if loop.time() > deadline:
            pytest.fail(f"no {what} within {timeout} s; threads: {[(t.name, t.waits) for t in said.threads]}, "
                        f"endpoints: {said.endpoints}, servers: {said.servers}")
        await asyncio.sleep(0.05)


def by_name(rows) -> dict:
    return {row.name: row for row in rows}


def test_typing_and_a_crash_on_the_desktop_in_words():
    async def scenario():
        async with held_machine(config_path=SETTINGS.configs_dir / "desktop.yaml") as (machine, reader, memory):
            async def press(key: str) -> None:
                await machine.command("send-key", {"keys": [{"type": "qcode", "data": key}]})

            ready = await _until(reader, memory, lambda said, _: by_name(said.threads).get("ps2") is not None
                                 and by_name(said.threads)["ps2"].waits == "wait on notification irq1", 60,
                                 "ps2 waiting on its IRQ's notification")
            before = by_name(ready.endpoints)["console"].calls
            for key in "kwast":
                await press(key)
            typed = await _until(reader, memory, lambda said, _: by_name(said.endpoints)["console"].calls >= before + 5,
                                 30, "five more calls on endpoint console")
            await press("f12")
            crashed = await _until(reader, memory, lambda said, _: by_name(said.servers)["ps2"].restarts == 1
                                   and by_name(said.servers)["ps2"].state == "running"
                                   and by_name(said.threads).get("ps2") is not None
                                   and by_name(said.threads)["ps2"].waits == "wait on notification irq1",
                                   60, "ps2 restarted and waiting for keys again")
            return ready, typed, crashed

    ready, typed, crashed = run(scenario())
    # Before typing: each server's thread says what it waits for, by name.
    threads = by_name(ready.threads)
    assert (threads["console"].server, threads["console"].waits) == ("console", "receive on endpoint console")
    assert threads["console"].wait_kind == "Receive" and threads["console"].wait_object == "console"
    assert threads["ps2"].server == "ps2" and threads["ps2"].wait_kind == "Notification"
    # `hold`: kmain sleeps a second at a time.
    assert re.fullmatch(r"sleep until \+\d+ ms", threads["kmain"].waits) and threads["kmain"].wait_kind == "Sleep"
    assert threads["idle"].server == "" and threads["idle"].waits == ""
    console = by_name(ready.endpoints)["console"]
    assert console.owner == "init" and console.receivers == ["console"] and console.callers == []
    irq = next(i for i in ready.irqs if i.line == 1)
    assert (irq.bound_by, irq.waiter) == ("init", "ps2") and irq.notification != 0
    # Typing: a call per key from ps2, each answered; totals only grow.
    console = by_name(typed.endpoints)["console"]
    assert console.calls >= 5 and console.replies == console.calls and console.errors == 0
    assert console.bytes >= console.calls  # a byte a key, and the empty replies
    calls = [e for e in typed.events if e.kind == "IpcCall"]
    assert calls and all(e.text == "ps2 → console call 1 bytes" and e.server == "ps2" for e in calls), calls
    # The crash: ps2's row counts the restart and keeps how it died; console's does not move.
    servers = by_name(crashed.servers)
    assert servers["ps2"].restarts == 1 and "unreachable" in servers["ps2"].last_exit, servers["ps2"]
    assert servers["ps2"].id != by_name(ready.servers)["ps2"].id
    assert servers["console"].restarts == 0 and servers["console"].last_exit == ""
    for name in ("init", "console", "ps2"):
        assert 0 < servers[name].memory <= servers[name].memory_limit, servers[name]
        assert 0 < servers[name].handles <= servers[name].handle_limit, servers[name]
    assert servers["init"].cpu_ticks > 0
    texts = [e.text for e in crashed.events]
    assert "init restarts ps2" in texts, texts
    assert any(t.startswith("ps2 killed: wasm `unreachable`") for t in texts), texts
    assert by_name(crashed.endpoints)["console"].calls >= console.calls


def test_recorded_desktop_snapshot_in_words():
    said = explain(recorded())
    threads = by_name(said.threads)
    assert [(t.name, t.server, t.state, t.waits) for t in said.threads] == [
        ("kmain", "", "Sleeping", "sleep until +294 ms"),
        ("idle", "", "Running", ""),
        ("init", "init", "Blocked", "wait on notification 1"),
        ("console", "console", "Blocked", "receive on endpoint console"),
        ("ps2", "ps2", "Blocked", "wait on notification irq1"),
    ]
    assert threads["ps2"].id == 6 and threads["console"].cpu_ticks == 12 and threads["init"].priority == 4
    (console,) = said.endpoints
    assert (console.id, console.name, console.owner, console.receivers, console.callers) == (1, "console", "init", ["console"], [])
    assert (console.calls, console.replies, console.bytes, console.errors, console.peer_died) == (3, 3, 3, 0, 0)
    servers = by_name(said.servers)
    assert [(s.id, s.name, s.status, s.restarts) for s in said.servers] == [
        (1, "init", "running", 0), (2, "console", "running", 0), (4, "ps2", "running", 1)]
    assert servers["ps2"].last_exit == ("killed: wasm `unreachable` instruction executed in __original_main "
                                        "\u2190 _start \u2190 _start.command_export")
    assert (servers["ps2"].memory, servers["ps2"].memory_limit, servers["ps2"].handles) == (128 << 10, 16 << 20, 4)
    (irq,) = said.irqs
    assert (irq.line, irq.notification, irq.bound_by, irq.waiter, irq.count, irq.acknowledged) == (1, 2, "init", "ps2", 7, 8)
    texts = [e.text for e in said.events]
    # The old ps2's thread (5) is gone from this snapshot: its events name it by id.
    assert texts[-40:-34] == ["switch idle → thread 5", "thread 5 → console call 1 bytes", "console wakes",
                              "switch thread 5 → console", "thread 5 wakes", "console replies on console: 0 bytes"]
    assert "init restarts ps2" in texts and "ps2 → console call 1 bytes" in texts and "irq1 signals ps2" in texts
    assert ("ps2 killed: wasm `unreachable` instruction executed in __original_main \u2190 _start "
            "\u2190 _start.command_export") in texts
    restart = next(e for e in said.events if e.kind == "Restart")
    assert (restart.server, restart.a, restart.b) == ("ps2", 4, 3)
    # Remembered across snapshots (as the TUI and --watch do), a gone thread keeps its name.
    known = {5: ("ps2", "ps2")}
    assert explain(recorded(), known=known).events[-39].text \
        == "ps2 → console call 1 bytes"


def test_every_wait_and_event_kind_the_kernel_declares_has_words():
    # The kinds come from the kernel's DWARF, so a kind added there without words here fails:
    # each one, put into the recorded snapshot, must read as words, not the raw fallback.
    for _, kind in dwarf.enum(SETTINGS.kernel_elf, "WaitKind").names:
        if kind == "None":
            continue
        kernel = recorded()
        thread = next(t for t in kernel.threads if t.id and t.state == "Blocked")
        thread.wait["kind"] = kind
        words = next(t for t in explain(kernel).threads if t.id == thread.id).waits
        assert words and words != kind, (kind, words)
    for _, kind in dwarf.enum(SETTINGS.kernel_elf, "EventKind").names:
        if kind == "None":
            continue
        kernel = recorded()
        kernel.events[-1]["kind"] = kind
        event = explain(kernel).events[-1]
        assert not re.fullmatch(rf".*: {kind} \d+ \d+", event.text), (kind, event.text)


def test_snapshot_json_has_the_documented_fields():
    kernel = recorded()
    document = json.loads(json.dumps(snapshot_json(kernel, events=5)))
    assert set(document) == {"sequence", "layout_version", "cpus", "threads_dropped", "endpoints_dropped",
                             "servers_dropped", "events_written", "events_dropped", "ticks_per_second", "ticks",
                             "threads", "endpoints", "servers", "irqs", "events"}
    assert len(document["events"]) == 5 and document["layout_version"] == 3
    documented = (SETTINGS.root / "docs/state-json.md").read_text()
    for table in ("threads", "endpoints", "servers", "irqs", "events"):
        for field in document[table][0]:
            assert f"`{field}`" in documented, f"{table}.{field} is not in docs/state-json.md"


def test_a_kernel_with_an_unknown_layout_version_is_refused(tmp_path):
    """A copy of the kernel ELF whose block declares layout version 99: the reader will not
    guess what its fields mean."""
    reader = StateReader(SETTINGS.kernel_elf)  # where the block's initial bytes lie
    elf = tmp_path / "kwast-kernel"
    shutil.copy(SETTINGS.kernel_elf, elf)
    with open(elf, "rb") as file:
        sections = [s for s in ELFFile(file).iter_sections()
                    if s["sh_flags"] & 2 and s["sh_type"] == "SHT_PROGBITS"  # SHF_ALLOC: loaded
                    and s["sh_addr"] <= reader.address < s["sh_addr"] + s["sh_size"]]
        (section,) = sections
        at = section["sh_offset"] + reader.address - section["sh_addr"] + reader.layout.offset_of("layout_version")
    with open(elf, "r+b") as file:
        file.seek(at)
        file.write((99).to_bytes(4, "little"))
    with pytest.raises(DebugStateError, match=r"has debug-state layout version 99; this workbench reads version 3: "
                                              r"its names for the block's fields would be wrong"):
        StateReader(elf)


def test_signals_in_words_on_recorded_snapshots():
    """tests/data/desktop-snapshots.json (see test_state_rates): each key's IRQ signals ps2's
    notification, and ps2, crashing, signals init's notification for its exit. The threads a
    signal woke are the wakes right after it."""
    from test_state_rates import snapshots

    _, typed, restarted = snapshots()
    known: dict = {}  # as --watch keeps it: the crashed ps2's thread is gone by the last snapshot
    typed_events = explain(typed, known=known).events
    pairs = [(e.text, e.server, after.text) for e, after in zip(typed_events, typed_events[1:]) if e.kind == "Signal"]
    assert pairs and set(pairs) == {("an IRQ signals notification irq1", "ps2", "ps2 wakes")}, pairs
    signal = next(e for e in typed_events if e.kind == "Signal")
    assert (signal.thread, signal.a, signal.b) == (0, 2, 1)  # thread 0: an IRQ; the bits init bound it with
    events = explain(restarted, known=known).events
    [(exit_signal, woken)] = [(e, after) for e, after in zip(events, events[1:]) if e.kind == "Signal" and e.thread]
    assert (exit_signal.text, exit_signal.server, woken.text) == ("ps2 signals notification 1", "ps2", "init wakes")
