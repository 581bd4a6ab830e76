"""What the host itself gives two processes: the anchor beside the kernel's parallel speed-up.

This machine is a virtual one whose two cores are not always two: for stretches of seconds two
native processes that run 1.9 times as fast side by side as one after the other run only 1.1
times as fast (its hypervisor shares the cores, and reports no steal time for it). A guest's
speed-up measured in such a stretch says nothing about the kernel, so the bench measures the
host's own with the guest's program, servers/compute built for the host, the way the kernel
measures its own (alternating pairs of short rounds, the median pair), just before and just
after, and prints it beside it.
"""
from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from . import build

SOURCE = Path("servers/compute/compute.c")
# One run, about as long as one of the kernel's rounds at its default work.
ROUND_S = 0.05


def compute_for_host(settings) -> Path:
    """servers/compute built with clang for this host, into build/anchor/."""
    out = settings.build_dir / "anchor"
    out.mkdir(parents=True, exist_ok=True)
    program = out / "compute-host"
    build.run_step(build.BuildStep("compute for the host", ["clang", "-O2", "-o", str(program), str(settings.root / SOURCE)],
                                   settings.root))
    return program


class HostParallel:
    """`measure` takes pairs of rounds of `program` (two runs one after the other, two at once,
    in turns which goes first) and keeps each pair's ratio of times."""

    def __init__(self, program: Path) -> None:
        self.program = program
        self.ratios: list[float] = []
        self._limit = 10_000
        while self._run(1) < ROUND_S / 4:  # a run's time grows as limit^1.5: 8x per doubling
            self._limit *= 4
        self._limit = int(self._limit * (ROUND_S / self._run(1)) ** (2 / 3))

    def _run(self, copies: int) -> float:
        started = time.perf_counter()
        running = [subprocess.Popen([str(self.program), str(self._limit)], stdout=subprocess.DEVNULL) for _ in range(copies)]
        for process in running:
            process.wait()
        return time.perf_counter() - started

    def measure(self, pairs: int = 15) -> None:
        for pair in range(pairs):
            if pair % 2 == 0:
                apart = self._run(1) + self._run(1)
                together = self._run(2)
            else:
                together = self._run(2)
                apart = self._run(1) + self._run(1)
            self.ratios.append(apart / together)

    @property
    def speedup(self) -> float:
        return statistics.median(self.ratios)
