"""Reading the kernel's debug-state block (`KWAST_DEBUG_STATE`, kernel/src/debug/state.rs),
read from guest memory while the guest runs.

Where the block is and how it is laid out come from the kernel ELF (see `dwarf`); so do the
magic and layout version it must carry (the static's initial bytes in .data). Guest memory is
read through the machine's QMP monitor, or through its RAM file when it has one (much faster):
the kernel is identity-mapped, so its addresses are physical.

Consistency (the kernel's seqlock): a read is: read the sequence S1, read the
block (which holds the sequence S2), read the sequence S3. It is consistent when
S1 == S2 == S3 and they are even (no update in flight, none completed in between). Otherwise
read again, reusing S3 as the next S1, for up to `patience` seconds. Through QMP the three
reads go to QEMU together (`read_in_order`): it runs them in that order, one round trip. The
bound is in time, not reads: an update is a few hundred guest instructions with interrupts
off, but on a busy host QEMU's vCPU thread can be descheduled in the middle of one for several
milliseconds (a host scheduler tick), and a tight loop of reads would give up long before it
runs again.
"""

from __future__ import annotations

import asyncio
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import dwarf
from .dwarf import Record
from .qemu import Monitor

SYMBOL = "KWAST_DEBUG_STATE"
# Events a read decodes (`KernelState.events`), the newest; `trace` drains the whole ring.
EVENTS_KEPT = 128
# The block's layout versions this workbench understands: the fields it reads by name and what
# they mean (kernel/src/debug/state.rs, LAYOUT_VERSION, says what each version changed).
# Offsets are never known here; meanings are, so a kernel of another version is refused.
LAYOUT_VERSIONS = (3,)


class DebugStateError(Exception):
    pass


class QmpMemory:
    """Guest physical memory through the machine's QMP monitor (`Monitor.read_memory`): each
    read is a QMP round trip, while a kernel with a timer updates the block every few
    milliseconds, so a seqlock check does not always bracket a quiet moment. After
    `optimistic_attempts`, a read pauses the guest (`paused()`) for its read."""

    optimistic_attempts = 3

    def __init__(self, machine: Monitor):
        self._machine = machine

    def paused(self):
        return self._machine.paused()

    async def read(self, address: int, size: int) -> bytes:
        return await self._machine.read_memory(address, size)

    async def read_in_order(self, reads: list[tuple[int, int]]) -> list[bytes]:
        return await self._machine.read_memory_in_order(reads)


class MmapMemory:
    """Guest physical memory through the machine's RAM file (`Machine(ram_file=True)`), mapped
    into this process: no QEMU round trip, the guest never stops. On the `pc` machine the file
    offset is the physical address below the PCI hole (3 GiB here is a safe bound)."""

    LOW_MEMORY = 3 << 30

    def __init__(self, path: Path):
        import mmap

        with open(path, "rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, prot=mmap.PROT_READ)
        self._limit = min(len(self._map), self.LOW_MEMORY)

    async def read(self, address: int, size: int) -> bytes:
        return self.read_now(address, size)

    async def read_in_order(self, reads: list[tuple[int, int]]) -> list[bytes]:
        return [self.read_now(address, size) for address, size in reads]

    def read_now(self, address: int, size: int) -> bytes:
        """The same, for a thread that polls (`trace.drain_while`)."""
        if address + size > self._limit:
            raise DebugStateError(f"{address:#x}+{size} is beyond the RAM file's low memory ({self._limit:#x})")
        return self._map[address:address + size]

    def close(self) -> None:
        self._map.close()


def memory_of(machine) -> QmpMemory | MmapMemory:
    """The fastest way into this machine's memory: its RAM file if it has one, else QMP."""
    ram = getattr(machine, "ram_path", None) if getattr(machine, "ram_file", False) else None
    return MmapMemory(ram) if ram is not None else QmpMemory(machine)


@dataclass
class KernelState:
    """The kernel's debug-state block as read at one moment (`StateReader.read`); a VM snapshot
    (`savevm`) is something else, the scenario step `snapshot`."""
    sequence: int
    cpu_count: int
    tsc_per_us: int
    cpus: list[Record]        # online CPUs only, each with its `index`
    threads: list[Record]     # live rows only (see `live_rows`), as every reader shows them
    threads_dropped: int
    endpoints: list[Record]   # live rows only
    endpoints_dropped: int
    servers: list[Record]     # one per server name ever started (live rows), each with its state
    servers_dropped: int
    irqs: list[Record]        # every IRQ line, each with its `line`
    events: list[Record]      # the newest EVENTS_KEPT, oldest to newest
    events_written: int
    events_dropped: int       # overwritten in the ring before this read
    raw: Record               # every field of the block as decoded, including ones added later
    read_ms: float = 0.0      # time to read and decode


class StateReader:
    # Reads spun back to back before the reader starts sleeping between them: most updates end
    # within a read or two.
    SPIN_READS = 8
    RETRY_INTERVAL = 0.0005

    def __init__(self, elf_path: Path | str, patience: float = 1.0):
        variable = dwarf.variable(elf_path, SYMBOL)
        if not isinstance(variable.type, dwarf.Struct):
            raise DebugStateError(f"{SYMBOL} in {elf_path} is not a struct")
        self.elf_path = Path(elf_path)
        self.address, self.layout, self.patience = variable.address, variable.type, patience
        self.size = self.layout.size
        # The event ring is decoded only for its newest `EVENTS_KEPT`: all of it (`trace`) costs
        # more than a view a few times a second should pay.
        self._members = [(m.name, m.offset, dwarf.decoder(m.type)) for m in self.layout.members if m.name != "events"]
        ring = self.layout.member("events")
        self._ring_offset, self._ring_capacity, self._event = ring.offset, ring.type.count, ring.type.element
        self._seq_offset = self.layout.offset_of("sequence")
        self._seq = struct.Struct("<Q")
        self._magic = self._field("magic")
        self._version = self._field("layout_version")
        # What the kernel declares the block starts with: its MAGIC and LAYOUT_VERSION.
        self.expected_magic = self._magic(variable.initial)
        self.expected_version = self._version(variable.initial)
        if self.expected_version not in LAYOUT_VERSIONS:
            raise DebugStateError(
                f"{elf_path} has debug-state layout version {self.expected_version}; this workbench "
                f"reads version {' or '.join(map(str, LAYOUT_VERSIONS))}: its names for the block's "
                f"fields would be wrong. Use the workbench of the kernel's commit, or teach "
                f"workbench/state.py and state_words.py that version")

    def _field(self, name: str) -> Callable[[bytes], int]:
        member = self.layout.member(name)
        decode = dwarf.decoder(member.type)
        return lambda data: decode(data, member.offset)

    async def read(self, memory) -> KernelState:
        started = time.perf_counter()
        deadline = started + self.patience
        seq_address = self.address + self._seq_offset
        block, sequence = (self.address, self.size), (seq_address, 8)
        first, data, last = await memory.read_in_order([sequence, block, sequence])
        before, after = self._seq.unpack(first)[0], self._seq.unpack(last)[0]
        optimistic = getattr(memory, "optimistic_attempts", None)
        reads = 1
        while True:
            self.check(data)
            inside = self._seq.unpack_from(data, self._seq_offset)[0]
            if before % 2 == 0 and before == inside == after:
                return self._timed(data, started)
            before = after
            if optimistic is not None and reads >= optimistic:
                return await self._paused_read(memory, started, deadline)
            if time.perf_counter() > deadline:
                break
            if reads >= self.SPIN_READS:
                await asyncio.sleep(self.RETRY_INTERVAL)
            data, last = await memory.read_in_order([block, sequence])
            after = self._seq.unpack(last)[0]
            reads += 1
        raise DebugStateError(
            f"kernel debug-state sequence was odd or changing for {self.patience:g} s ({reads} reads, "
            f"last {before:#x}): the kernel may have stopped inside an update (a fault?) or updates "
            f"without pause; look at the serial console, or stop the guest and read again")

    async def _paused_read(self, memory, started: float, deadline: float) -> KernelState:
        # With the guest stopped nothing moves: the block is consistent unless the guest was
        # stopped inside an update (sequence odd); then let it run a moment and try again.
        reads = 0
        while True:
            async with memory.paused():
                data = await memory.read(self.address, self.size)
            reads += 1
            self.check(data)
            sequence = self._seq.unpack_from(data, self._seq_offset)[0]
            if sequence % 2 == 0:
                return self._timed(data, started)
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.001)
        raise DebugStateError(
            f"kernel debug-state sequence was odd for {self.patience:g} s in {reads} reads of the "
            f"paused guest (last {sequence:#x}): the kernel may have stopped inside an update (a "
            f"fault?); look at the serial console")

    def _timed(self, data: bytes, started: float) -> KernelState:
        kernel = self.parse(data)
        kernel.read_ms = (time.perf_counter() - started) * 1000
        return kernel

    def check(self, data: bytes) -> None:
        magic, version = self._magic(data), self._version(data)
        if magic != self.expected_magic:
            raise DebugStateError(
                f"kernel debug-state magic is {magic:#x} expected {self.expected_magic:#x} "
                f"(at {self.address:#x}): not a Kwast kernel, not booted yet, a different build than "
                f"{self.elf_path}, or memory corrupted")
        if version != self.expected_version:
            raise DebugStateError(
                f"kernel debug-state layout version is {version}, expected {self.expected_version} "
                f"(from {self.elf_path}): the running kernel is not this build (rebuild and reboot), "
                f"or memory corrupted")

    def parse(self, data: bytes) -> KernelState:
        raw = Record((name, decode(data, offset)) for name, offset, decode in self._members)
        raw["events"] = self._newest_events(data, raw.events_written)
        return from_raw(raw, self._ring_capacity)

    def _newest_events(self, data: bytes, written: int) -> list[Record]:
        """The newest `EVENTS_KEPT` events, oldest first: event `i` is in slot `i % capacity`."""
        first = max(0, written - EVENTS_KEPT)
        events = []
        while first < written:  # at most two runs of slots: before and after the ring wraps
            slot = first % self._ring_capacity
            count = min(written - first, self._ring_capacity - slot)
            run = dwarf.decoder(dwarf.Array(self._event, count))
            events += run(data, self._ring_offset + slot * self._event.size)
            first += count
        return events


def from_raw(raw: Record, ring_capacity: int) -> KernelState:
    """The snapshot a decoded block holds, its `events` the newest, oldest first (as `parse`
    decodes them); also one recorded as JSON (`record_of`)."""
    cpus = [Record(index=i, **cpu) for i, cpu in enumerate(raw.cpus) if cpu.online]
    threads = live_rows(raw.threads, raw.thread_count)
    endpoints = live_rows(raw.endpoints, raw.endpoint_count)
    servers = live_rows(raw.servers, raw.server_count)
    irqs = [Record(line=line, **irq) for line, irq in enumerate(raw.irqs)]
    written = raw.events_written
    return KernelState(
        sequence=raw.sequence, cpu_count=raw.cpu_count, tsc_per_us=raw.tsc_per_us,
        cpus=cpus, threads=threads, threads_dropped=raw.threads_dropped,
        endpoints=endpoints, endpoints_dropped=raw.endpoints_dropped,
        servers=servers, servers_dropped=raw.servers_dropped, irqs=irqs, events=raw.events, events_written=written,
        events_dropped=max(0, written - ring_capacity), raw=raw)


def record_of(value):
    """A decoded value read back from JSON: dicts become Records again, at every depth."""
    if isinstance(value, dict):
        return Record({key: record_of(item) for key, item in value.items()})
    if isinstance(value, list):
        return [record_of(item) for item in value]
    return value


def live_rows(rows: list[Record], used: int) -> list[Record]:
    """A table's rows that describe a live object: of the first `used` (rows ever used), those
    not freed since. The kernel marks a free row by id 0 and nothing else
    (kernel/src/debug/rows.rs); this is the one place the workbench goes by that mark."""
    return [row for row in rows[:min(used, len(rows))] if row.id != 0]


async def wait_published(reader: StateReader, memory, timeout: float = 30, interval: float = 0.02) -> KernelState:
    """The first read after the kernel has published its CPUs. Until the boot loader has
    copied the kernel in, the block's memory holds zeros: that is expected, not an error yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            kernel = await reader.read(memory)
            if kernel.cpu_count > 0:
                return kernel
            error = DebugStateError("the kernel has not published its CPUs (cpu_count is 0)")
        except DebugStateError as failure:
            error = failure
        if time.monotonic() > deadline:
            raise DebugStateError(f"no usable debug state within {timeout} s: {error}")
        await asyncio.sleep(interval)
