"""`kwast-bench trace`: the kernel's event ring, drained while the guest runs, as a trace
Perfetto opens (Chrome's JSON trace format).

Draining reads only the ring and its `events_written` counter, found by name in the DWARF like
the rest of the block (`state.StateReader`), through the machine's RAM file: no QEMU round
trip, the guest never stops. No lock is needed: the kernel stores an event, then counts it, so
event `i` is whole once `events_written` > i, and stays so until event `i + ring` starts
overwriting it, which cannot have begun before `events_written` reached `i + ring`. A drain
reads the counter, the slots of the events new since the last drain, the counter again, and
keeps those the second count shows were not being overwritten. What the kernel overwrote
before a drain saw it is counted, and the trace marks where.

The trace: a track per CPU and per thread with a slice for every run period (from `Switch`
events), instants for IPC calls, receives and replies, notification signals, IRQs, wakes, kills
requested, traps, restarts, thread starts and exits, and flows from each call to its receive and
reply, from each IRQ to the next run of its driver, and from each signal by a thread to the next
run of each thread it woke. The kernel records a signal's wakes right after its `Signal` event,
with interrupts off between, each naming the notification. It records no receive event: a call's receive is where the thread
that replies to it last started to run after the call (or the call itself, if it was already
running). An endpoint is named after the server that replies on it; a notification after the
IRQ line that signals it, if one does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import dwarf
from .dwarf import Record
from .state import DebugStateError, KernelState, StateReader, live_rows, memory_of, wait_published


@dataclass
class Drained:
    events: list[tuple[int, Record]] = field(default_factory=list)  # (number, event), oldest first
    lost: list[tuple[int, int]] = field(default_factory=list)       # (first number lost, how many)
    drains: int = 0
    holds: int = 0  # drains that held the guest: the ring was half full

    @property
    def dropped(self) -> int:
        return sum(count for _, count in self.lost)


class RingDrainer:
    """Keeps every new event of the ring, read from guest memory by `read(address, size)`."""

    def __init__(self, reader: StateReader):
        layout = reader.layout
        ring = layout.member("events")
        written = layout.member("events_written")
        self._ring_address = reader.address + ring.offset
        self._written_address, self._written_size = reader.address + written.offset, written.type.size
        self._event = ring.type.element
        self._decode_written = dwarf.decoder(written.type)
        self.capacity = ring.type.count
        self.seen = 0  # events numbered below this were kept or counted lost
        # The thread and endpoint tables, for names: read alone, not with the whole block.
        self._tables = [(name, reader.address + layout.member(name).offset, layout.member(name).type.size,
                         dwarf.decoder(layout.member(name).type))
                        for name in ("thread_count", "threads", "endpoint_count", "endpoints")]
        self.drained = Drained()

    def drain(self, read, hold: Callable[[bool], None] | None = None) -> int:
        """Reads the ring's new events through `read(address, size) -> bytes`; returns how many
        it kept. With nothing new it reads only the counter. With `hold`, a ring found half
        full has the guest held (`hold(True)`) while it is read, and let go after."""
        before = self._decode_written(read(self._written_address, self._written_size), 0)
        held = hold is not None and before - self.seen > self.capacity // 2
        if held:
            hold(True)
            before = self._decode_written(read(self._written_address, self._written_size), 0)
        try:
            runs = [(number, count, read(address, size)) for number, count, address, size in self._runs(before)]
            return self._keep(before, runs, self._decode_written(read(self._written_address, self._written_size), 0))
        finally:
            if held:
                self.drained.holds += 1
                hold(False)

    async def drain_async(self, memory) -> int:
        """The same through a `state` memory: the runs and the count after them are read in
        order in one go (`read_in_order`: one QMP round trip)."""
        written = (self._written_address, self._written_size)
        before = self._decode_written(await memory.read(*written), 0)
        spans = self._runs(before)
        *data, after = await memory.read_in_order([(address, size) for _, _, address, size in spans] + [written])
        runs = [(number, count, read) for (number, count, _, _), read in zip(spans, data)]
        return self._keep(before, runs, self._decode_written(after, 0))

    def rows(self, read) -> tuple[list[Record], list[Record]]:
        """The live thread and endpoint rows, read without the seqlock: a row caught half
        written can only misname a track, and the next read names it again."""
        t = {name: decode(read(address, size), 0) for name, address, size, decode in self._tables}
        return live_rows(t["threads"], t["thread_count"]), live_rows(t["endpoints"], t["endpoint_count"])

    def _runs(self, before: int) -> list[tuple[int, int, int, int]]:
        """(first event number, count, address, size) of the slots holding the events from
        `seen` (or the oldest the ring holds) to `before`: at most two, as the ring wraps."""
        runs, number = [], max(self.seen, before - self.capacity)
        while number < before:
            slot = number % self.capacity
            count = min(before - number, self.capacity - slot)
            runs.append((number, count, self._ring_address + slot * self._event.size, count * self._event.size))
            number += count
        return runs

    def _keep(self, before: int, runs: list[tuple[int, int, bytes]], after: int) -> int:
        self.drained.drains += 1
        oldest = max(self.seen, after - self.capacity + 1, 0)  # older slots may be overwritten by now
        if oldest > self.seen:
            self.drained.lost.append((self.seen, oldest - self.seen))
        kept = 0
        for number, count, raw in runs:
            skip = max(0, min(oldest - number, count))
            if skip < count:
                events = dwarf.decoder(dwarf.Array(self._event, count - skip))(raw, skip * self._event.size)
                self.drained.events += zip(range(number + skip, number + count), events)
                kept += count - skip
        self.seen = max(self.seen, before)
        return kept


def drain_while(drainer: RingDrainer, read, stop: threading.Event, names: Names | None = None,
                pid: int | None = None, interval: float = 0.0002) -> None:
    """Drains until `stop` is set, then once more: a thread of its own, as mmap reads never
    block on QEMU. With `names`, learns the rows' names whenever a thread has started (its row
    lives only as long as the thread), here too, so that nothing else holds the interpreter.
    With QEMU's `pid`, a half-full ring stops QEMU (SIGSTOP) until it is drained: a host too
    busy to drain in time slows the guest instead of losing events. Where allowed (root), the
    thread runs at a higher priority than the host's other work."""
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), -10)

    def hold(stopped: bool) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP if stopped else signal.SIGCONT)

    while not stop.is_set():
        kept = drainer.drain(read, hold if pid is not None else None)
        if kept == 0:
            time.sleep(interval)
        elif names is not None and any(str(event.kind) == "ThreadStart" for _, event in drainer.drained.events[-kept:]):
            names.learn_rows(drainer.rows(read))
    drainer.drain(read)


async def record(machine, elf: Path, seconds: float, keys: str = "", keys_after: str | None = None
                 ) -> tuple[Drained, Names, int]:
    """Drains the ring of a resumed machine with a RAM file for `seconds` or until it ends,
    typing `keys` (once a console line matches `keys_after`, if given); returns the events,
    their names and the TSC's rate."""
    if not machine.ram_file:
        raise DebugStateError("tracing drains the ring through the machine's RAM file: start it with ram_file=True")
    _yield_to_drainer(machine.process.pid)
    reader, memory = StateReader(elf), memory_of(machine)
    try:
        kernel = await wait_published(reader, memory)
        names, drainer, stop = Names(), RingDrainer(reader), threading.Event()
        names.learn(kernel)
        drainer.seen = max(0, kernel.events_written - drainer.capacity + 1)  # what came before, still in the ring
        worker = threading.Thread(target=drain_while, args=(drainer, memory.read_now, stop, names, machine.process.pid),
                                  daemon=True)
        worker.start()
        try:
            deadline = time.monotonic() + seconds
            while keys and time.monotonic() < deadline and machine.process.returncode is None:
                if keys_after is None or re.search(keys_after, machine.serial_text, re.MULTILINE):
                    await machine.send_keys(keys)
                    break
                await asyncio.sleep(0.05)
            while time.monotonic() < deadline and machine.process.returncode is None:
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.to_thread(worker.join)
    finally:
        memory.close()
    return drainer.drained, names, kernel.tsc_per_us


def _yield_to_drainer(pid: int) -> None:
    """Lowers the traced QEMU's priority below this process's (nice 10, every thread: Linux
    nice is per thread), so that on a busy host the drainer runs before the guest fills the
    ring. Under -icount the guest's instruction counts do not change; it only runs slower."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, int(task.name), max(10, os.getpriority(os.PRIO_PROCESS, int(task.name))))


async def ring_now(reader: StateReader, memory) -> list[tuple[int, Record]]:
    """Every event the ring holds now, numbered, oldest first: a failure's last events."""
    drainer = RingDrainer(reader)
    await drainer.drain_async(memory)
    return drainer.drained.events


@dataclass
class Names:
    """What ids mean, from the state block's rows as last seen: threads and endpoints."""
    threads: dict[int, str] = field(default_factory=dict)          # thread id -> name
    thread_process: dict[int, int] = field(default_factory=dict)   # thread id -> process
    endpoint_owner: dict[int, int] = field(default_factory=dict)   # endpoint id -> owning process
    endpoint_server: dict[int, int] = field(default_factory=dict)  # endpoint id -> a thread that replied on it
    notification_irq: dict[int, int] = field(default_factory=dict)  # notification id -> the IRQ line signalling it

    def learn(self, kernel: KernelState) -> None:
        self.learn_rows((kernel.threads, kernel.endpoints))

    def learn_rows(self, rows: tuple[list[Record], list[Record]]) -> None:
        threads, endpoints = rows
        for thread in threads:
            self.threads[thread.id] = thread.name
            self.thread_process[thread.id] = thread.process
        for endpoint in endpoints:
            self.endpoint_owner[endpoint.id] = endpoint.owner

    def thread(self, id_: int) -> str:
        return f"{self.threads.get(id_, 'thread')} ({id_})"

    def process_name(self, process: int) -> str | None:
        """A process's server name: its threads are named after it."""
        names = {self.threads[t] for t, p in self.thread_process.items() if p == process and t in self.threads}
        return min(names) if names else None

    def endpoint(self, id_: int) -> str:
        server = self.endpoint_server.get(id_)
        if server is not None and server in self.threads:
            return f"endpoint {id_} ({self.threads[server]})"
        owner = self.process_name(self.endpoint_owner.get(id_, -1))
        return f"endpoint {id_}" + (f" (made by {owner})" if owner else "")

    def notification(self, id_: int) -> str:
        line = self.notification_irq.get(id_)
        return f"notification {id_}" + (f" (irq{line})" if line is not None else "")

    def learn_events(self, events: list[tuple[int, Record]]) -> None:
        for (_, event), (_, following) in zip(events, events[1:] + [(None, None)]):
            if str(event.kind) == "IpcReply":
                self.endpoint_server.setdefault(event.a, event.thread)
            elif str(event.kind) == "Irq" and following is not None and str(following.kind) == "Signal":
                self.notification_irq.setdefault(following.a, event.a)  # the IRQ signals its notification at once


def chrome_trace(events: list[tuple[int, Record]], names: Names, tsc_per_us: int,
                 lost: list[tuple[int, int]] = ()) -> dict:
    """Events (numbered, oldest first) as Chrome's JSON trace: pid 1 holds a track per CPU (each
    event says its CPU), pid 2 a track per thread; timestamps in microseconds of the kernel's TSC."""
    scale = max(tsc_per_us, 1)
    names.learn_events(events)
    out: list[dict] = [{"ph": "M", "pid": 1, "name": "process_name", "args": {"name": "CPUs"}},
                       {"ph": "M", "pid": 2, "name": "process_name", "args": {"name": "threads"}}]
    threads_seen: set[int] = set()
    cpus_seen: set[int] = set()

    def us(tsc: int) -> float:
        return tsc / scale

    def track(thread: int) -> tuple[int, int]:
        if thread not in threads_seen:
            threads_seen.add(thread)
            out.append({"ph": "M", "pid": 2, "tid": thread, "name": "thread_name", "args": {"name": names.thread(thread)}})
        return 2, thread

    def cpu_track(event: Record) -> tuple[int, int]:
        cpu = event.get("cpu", 0)  # events recorded before they carried their CPU: CPU 0's
        if cpu not in cpus_seen:
            cpus_seen.add(cpu)
            out.append({"ph": "M", "pid": 1, "tid": cpu, "name": "thread_name", "args": {"name": f"CPU {cpu}"}})
        return 1, cpu

    def instant(event: Record, name: str, args: dict, pid_tid: tuple[int, int] | None = None) -> dict:
        pid, tid = pid_tid or track(event.thread)
        entry = {"ph": "i", "s": "t", "pid": pid, "tid": tid, "ts": us(event.tsc), "name": name, "cat": "kernel",
                 "args": args}
        out.append(entry)
        return entry

    def flow(phase: str, id_: int, ts: float, pid_tid: tuple[int, int], name: str) -> None:
        entry = {"ph": phase, "id": id_, "pid": pid_tid[0], "tid": pid_tid[1], "ts": ts, "name": name, "cat": name}
        if phase == "f":
            entry["bp"] = "e"
        out.append(entry)

    running: dict[int, tuple[int, float]] = {}  # per CPU: (thread, since)
    calls: dict[int, collections.deque] = collections.defaultdict(collections.deque)  # endpoint -> (flow id, ts)
    started: dict[int, list[float]] = collections.defaultdict(list)  # thread -> when it started each run
    woken: dict[int, list[tuple[int, str]]] = collections.defaultdict(list)  # thread -> (flow, kind) ending at its next run
    signalled: tuple[int, Record] | None = None  # a thread's Signal while its Wakes follow: (last number, event)
    drivers = _irq_drivers(events)
    unknown_driver: list[tuple[int, int]] = []  # (line, flow) of IRQs whose driver no Wake has shown
    next_flow = 1
    for number, event in events:
        kind, ts = str(event.kind), us(event.tsc)
        if signalled is not None and kind != "Wake":
            signalled = None
        if kind == "Switch":
            cpu = cpu_track(event)
            if cpu[1] in running and running[cpu[1]][0] == event.thread:
                _slice(out, running[cpu[1]], ts, names, track, cpu)
            running[cpu[1]] = (event.a, ts)
            started[event.a].append(ts)
            if unknown_driver and not names.thread(event.a).startswith("idle"):  # the first to run after the IRQ
                for line, flow_id in unknown_driver:
                    drivers.setdefault(line, event.a)
                    woken[event.a].append((flow_id, "irq"))
                unknown_driver.clear()
            for flow_id, cat in woken.pop(event.a, ()):
                flow("f", flow_id, ts, track(event.a), cat)
        elif kind == "IpcCall":
            instant(event, f"call {names.endpoint(event.a)}", {"bytes": event.b, "event": number})
            flow("s", next_flow, ts, track(event.thread), "ipc")
            calls[event.a].append((next_flow, ts))
            next_flow += 1
        elif kind == "IpcReply":
            instant(event, f"reply {names.endpoint(event.a)}", {"bytes": event.b, "event": number})
            if calls[event.a]:
                flow_id, called = calls[event.a].popleft()
                runs = started[event.thread]
                received = runs[-1] if runs and runs[-1] >= called else called
                out.append({"ph": "i", "s": "t", "pid": 2, "tid": event.thread, "ts": received, "cat": "kernel",
                            "name": f"receive {names.endpoint(event.a)}", "args": {"inferred": True}})
                flow("t", flow_id, received, track(event.thread), "ipc")
                flow("f", flow_id, ts, track(event.thread), "ipc")
        elif kind == "Irq":
            instant(event, f"IRQ {event.a}", {"bits": event.b, "event": number}, cpu_track(event))
            driver = drivers.get(event.a)
            flow("s", next_flow, ts, cpu_track(event), "irq")
            if driver is None:
                unknown_driver.append((event.a, next_flow))
            elif any(thread == driver for thread, _ in running.values()):  # it is running: it sees the IRQ now
                flow("f", next_flow, ts, track(driver), "irq")
            else:  # at its next run
                woken[driver].append((next_flow, "irq"))
            next_flow += 1
        elif kind == "Signal":
            # An IRQ's signal is on the CPU's track, its arrow the IRQ's.
            instant(event, f"signal {names.notification(event.a)}", {"bits": event.b, "event": number},
                    None if event.thread else cpu_track(event))
            signalled = (number, event) if event.thread else None
        elif kind == "Wake":
            instant(event, "wake", {"event": number})
            # A signal's wakes follow it (none lost between) and name its notification: a
            # deadline's or the kernel's wake that happens to come next does not.
            if signalled is not None and number == signalled[0] + 1 and event.a == signalled[1].a:
                flow("s", next_flow, us(signalled[1].tsc), track(signalled[1].thread), "signal")
                woken[event.thread].append((next_flow, "signal"))
                next_flow += 1
                signalled = (number, signalled[1])
        elif kind == "Restart":
            instant(event, "restart", {"process": event.a, "previous process": event.b, "event": number})
        elif kind == "Trap":
            instant(event, "trap (server killed)", {"process": event.a, "event": number})
        elif kind == "Kill":
            instant(event, f"kill requested: process {event.a}", {"process": event.a, "event": number}, cpu_track(event))
        elif kind in ("ThreadStart", "ThreadExit"):
            instant(event, {"ThreadStart": "thread start", "ThreadExit": "thread exit"}[kind], {"event": number})
    for cpu, run in running.items():
        _slice(out, run, us(events[-1][1].tsc), names, track, (1, cpu))
    for first, count in lost:
        at = next((us(event.tsc) for number, event in events if number >= first + count), 0.0)
        out.append({"ph": "i", "s": "g", "pid": 1, "tid": min(cpus_seen, default=0), "ts": at, "name": f"{count} events lost",
                    "cat": "lost", "args": {"first event number": first, "count": count}})
    return {"traceEvents": out, "displayTimeUnit": "ns",
            "otherData": {"events": len(events), "dropped": sum(c for _, c in lost),
                          "first event": events[0][0] if events else None, "last event": events[-1][0] if events else None}}


def _irq_drivers(events: list[tuple[int, Record]]) -> dict[int, int]:
    """IRQ line -> the driver thread it wakes: the kernel signals the line's notification as it
    records the IRQ, so a waiting driver's Wake is the very next event but the `Signal` (which
    kernels before that event lack). A line whose driver was never waiting in these events
    gets, approximately, the first thread but idle to run after its IRQ."""
    drivers = {}
    kinds = [str(event.kind) for _, event in events]
    for i, (_, event) in enumerate(events):
        if kinds[i] == "Irq":
            woken = i + 2 if kinds[i + 1:i + 2] == ["Signal"] else i + 1
            if kinds[woken:woken + 1] == ["Wake"]:
                drivers.setdefault(event.a, events[woken][1].thread)
    return drivers


def _slice(out: list[dict], running: tuple[int, float], end: float, names: Names, track, cpu: tuple[int, int]) -> None:
    thread, since = running
    duration = max(end - since, 0.0)
    pid, tid = track(thread)
    out.append({"ph": "X", "pid": pid, "tid": tid, "ts": since, "dur": duration, "name": "running", "cat": "sched"})
    out.append({"ph": "X", "pid": cpu[0], "tid": cpu[1], "ts": since, "dur": duration, "name": names.thread(thread),
                "cat": "sched"})


def summary(events: list[tuple[int, Record]], names: Names) -> dict:
    """Calls per endpoint and the median call-to-reply time in TSC ticks (under `-icount
    shift=0`, guest instructions)."""
    names.learn_events(events)
    open_calls: dict[int, collections.deque] = collections.defaultdict(collections.deque)
    latencies: dict[int, list[int]] = collections.defaultdict(list)
    calls: collections.Counter = collections.Counter()
    for _, event in events:
        kind = str(event.kind)
        if kind == "IpcCall":
            calls[event.a] += 1
            open_calls[event.a].append(event.tsc)
        elif kind == "IpcReply" and open_calls[event.a]:
            latencies[event.a].append(event.tsc - open_calls[event.a].popleft())
    return {"endpoints": [{"endpoint": endpoint, "name": names.endpoint(endpoint), "calls": count,
                           "replies": len(latencies[endpoint]),
                           "median_latency": statistics.median(latencies[endpoint]) if latencies[endpoint] else None}
                          for endpoint, count in sorted(calls.items())]}


def write(folder_or_file: Path, events: list[tuple[int, Record]], names: Names, tsc_per_us: int,
          lost: list[tuple[int, int]] = ()) -> tuple[Path, Path]:
    """The trace and its summary (`NAME.summary.json` beside it)."""
    path = folder_or_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(chrome_trace(events, names, tsc_per_us, lost)))
    summary_path = path.with_name(path.name.removesuffix(".json") + ".summary.json")
    summary_path.write_text(json.dumps({**summary(events, names), "events": len(events),
                                        "dropped": sum(c for _, c in lost)}, indent=1))
    return path, summary_path


def from_state(kernel: KernelState) -> tuple[list[tuple[int, Record]], Names]:
    """The events one state read holds (the ring's last ones), numbered, and their names."""
    names = Names()
    names.learn(kernel)
    first = kernel.events_written - len(kernel.events)
    return list(enumerate(kernel.events, first)), names
