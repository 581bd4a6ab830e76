"""The workbench's own latency figures, measured on the real kernel in real QEMU."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

from . import config
from .gdb import Gdb
from .qemu import Machine, boot
from .state import MmapMemory, QmpMemory, StateReader, wait_published


@dataclass
class Figure:
    name: str
    samples: list[float]  # milliseconds
    target_ms: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def line(self) -> str:
        p90 = sorted(self.samples)[int(len(self.samples) * 0.9) - 1]
        target = f"  (target <= {self.target_ms:g} ms: {'met' if self.median <= self.target_ms else 'MISSED'})" \
            if self.target_ms is not None else ""
        return f"{self.name:<46} median {self.median:7.3f} ms  p90 {p90:7.3f} ms  n={len(self.samples)}{target}"


async def measure(settings, hardware, image, count: int = 200) -> list[Figure]:
    """Boots the kernel with `hold` and guest RAM in a file, then times snapshots (RAM file and
    QMP) while it runs, and GDB/MI round trips once GDB has attached (which stops it)."""
    figures = []
    async with Machine(settings, hardware, image, "hold", ram_file=True) as machine:
        reader = StateReader(image.path)
        mapped = MmapMemory(machine.ram_path)
        try:
            await machine.resume()
            await wait_published(reader, mapped)
            for name, memory, target in (("state snapshot read+decode (RAM file mmap)", mapped, 5.0),
                                         ("state snapshot read+decode (QMP pmemsave+xp)", QmpMemory(machine), 5.0)):
                samples = []
                for _ in range(count):
                    samples.append((await reader.snapshot(memory)).read_ms)
                figures.append(Figure(name, samples, target))
        finally:
            mapped.close()
        with Gdb(image.path, machine.gdb_socket) as gdb:
            seq = reader.address + reader.layout.offset_of("sequence")
            for name, mi, target in (("GDB/MI round trip (-data-evaluate-expression)", "-data-evaluate-expression 1", 3.0),
                                     ("GDB/MI read 8 bytes of guest memory", f"-data-read-memory-bytes {seq:#x} 8", 3.0),
                                     ("GDB/MI backtrace (-stack-list-frames)", "-stack-list-frames", None)):
                samples = []
                for _ in range(count):
                    started = time.perf_counter()
                    gdb.command(mi)
                    samples.append((time.perf_counter() - started) * 1000)
                figures.append(Figure(name, samples, target))
    return figures


# The lines servers/ping prints; the figures are TSC cycles, i.e. guest instructions under
# the pingpong config's -icount shift=0.
_PING = re.compile(r"^\[ping\] 64-byte call\+reply: (?P<call>\d+) cycles$.*?"
                   r"^\[ping\] thread switch: (?P<switch>\d+) cycles$", re.M | re.S)


async def ipc(settings, image) -> list[str]:
    """Boots configs/pingpong.yaml and reports ping's figures, measured in one run."""
    hardware = config.load(settings.configs_dir / "pingpong.yaml")
    outcome = await boot(settings, hardware, image, timeout=300)
    found = _PING.search(outcome.serial)
    if not outcome.ok or found is None:
        raise BenchError(f"the ping/pong run did not report its figures ({outcome.describe()}):\n{outcome.serial[-2000:]}")
    call, switch = int(found["call"]), int(found["switch"])
    return [f"{'IPC 64-byte call+reply (guest instructions)':<46} {call:>8}",
            f"{'thread switch (guest instructions)':<46} {switch:>8}",
            f"{'call+reply / switch (same run)':<46} {call / switch:>8.1f}"]


class BenchError(Exception):
    pass
