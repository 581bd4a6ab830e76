"""Figures measured on the real kernel in real QEMU, in suites: the workbench's own latency
(wall clock), the kernel's IPC cost and wasm against native code (guest instructions, exact
under -icount shift=0). Every figure has a name, a value, a unit and, where there is one, a
target it must meet (`kwast-bench bench --json` writes them for tools)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from . import build, config
from .gdb import Gdb
from .host_parallel import HostParallel, compute_for_host
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

    def record(self) -> dict:
        return {"name": self.name, "value": self.median, "unit": "ms (median)", "target": self.target_ms,
                "met": None if self.target_ms is None else self.median <= self.target_ms}


@dataclass
class Count:
    """An exact figure: guest instructions, or a ratio of them."""
    name: str
    value: float
    unit: str
    target: float | None = None  # the most it may be (the least, with at_least)
    detail: str = ""             # shown after the value, e.g. what a ratio divides
    at_least: bool = False       # a figure that must reach its target, as a speed-up

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.at_least else self.value <= self.target

    def line(self) -> str:
        value = f"{self.value:>11.0f}" if self.unit == "instructions" else f"{self.value:>11.2f}"
        bound = ">=" if self.at_least else "<="
        target = f"  (target {bound} {self.target:g}: {'met' if self.met else 'MISSED'})" if self.target is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.name:<46} {value} {self.unit}{detail}{target}"

    def record(self) -> dict:
        return {"name": self.name, "value": self.value, "unit": self.unit, "target": self.target, "met": self.met,
                **({"detail": self.detail} if self.detail else {}), **({"at_least": True} if self.at_least else {})}


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
            for name, memory, target in (("kernel state read+decode (RAM file mmap)", mapped, 5.0),
                                         ("kernel state read+decode (QMP pmemsave+xp)", QmpMemory(machine), 5.0)):
                samples = []
                for _ in range(count):
                    samples.append((await reader.read(memory)).read_ms)
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


# The lines servers/ping prints: the median and minimum of its batches, in TSC cycles, i.e.
# guest instructions under the pingpong config's -icount shift=0.
_PING = re.compile(r"^\[ping\] (?P<what>[^:\n]+): median (?P<median>\d+), min (?P<min>\d+) cycles$", re.M)
_PING_FIGURES = ("64-byte call+reply", "4096-byte call+reply", "call+reply passing a handle", "signal+wait",
                 "thread switch")
# Issue 14's targets: below what L4 kernels pay with hardware protection (see README).
CALL_TARGET, SWITCH_TARGET, BIG_CALL_EXTRA, CALL_PER_SWITCH, HANDLE_PER_CALL, SIGNAL_PER_SWITCH = \
    1000, 500, 1000, 2.2, 1.3, 1.2


async def _console(settings, image, name: str, timeout: float = 300, fatal: re.Pattern | None = None) -> str:
    """Boots configs/NAME.yaml to its end: its console, or a BenchError if it ended otherwise,
    or at once when a console line matches `fatal` (a server of the benchmark that failed,
    whose restarts would run on until the timeout)."""
    hardware = config.load(settings.configs_dir / f"{name}.yaml")
    failed = asyncio.Event()

    def watch(_: str) -> None:
        # The whole console, not the chunk: a line may arrive in pieces.
        if fatal is not None and fatal.search(machine.serial_text):
            failed.set()

    machine = Machine(settings, hardware, image, on_serial=watch)  # named before it can call `watch`
    async with machine:
        await machine.resume()
        ended = asyncio.ensure_future(machine.wait_exit(timeout))
        failing = asyncio.ensure_future(failed.wait())
        await asyncio.wait([ended, failing], return_when=asyncio.FIRST_COMPLETED)
        failing.cancel()
        if not ended.done():
            ended.cancel()
            line = fatal.search(machine.serial_text)[0]  # type: ignore[union-attr]
            raise BenchError(f"the {name} run failed ({line}):\n{machine.serial_text[-2000:]}")
        outcome = ended.result()
    if not outcome.ok:
        raise BenchError(f"the {name} run failed ({outcome.describe()}):\n{outcome.serial[-2000:]}")
    return outcome.serial


# A server of the ping/pong runs that did not end well: ping exits 0 after its last figure.
_PING_FAILED = re.compile(r"^server (ping|pong) (killed|exited with code [1-9])", re.M)


def ping_figures(serial: str) -> list[Count]:
    """ping's figures with their targets (medians; the minimum beside each)."""
    found = {m["what"]: (int(m["median"]), int(m["min"])) for m in _PING.finditer(serial)}
    missing = [name for name in _PING_FIGURES if name not in found]
    if missing:
        raise BenchError(f"ping did not report {', '.join(missing)}:\n{serial[-2000:]}")
    (call, call_min), (big, big_min), (handle, handle_min), (signal, signal_min), (switch, switch_min) = \
        (found[name] for name in _PING_FIGURES)
    return [Count("IPC 64-byte call+reply", call, "instructions", CALL_TARGET, f"min {call_min}"),
            Count("IPC 4096-byte call+reply", big, "instructions", call + BIG_CALL_EXTRA, f"min {big_min}"),
            Count("IPC call+reply passing a handle", handle, "instructions", None, f"min {handle_min}"),
            Count("signal+wait between two servers", signal, "instructions", None, f"min {signal_min}"),
            Count("thread switch", switch, "instructions", SWITCH_TARGET, f"min {switch_min}"),
            Count("call+reply / switch (same run)", call / switch, "ratio", CALL_PER_SWITCH),
            Count("call passing a handle / plain call", handle / call, "ratio", HANDLE_PER_CALL),
            Count("signal+wait / switch", signal / switch, "ratio", SIGNAL_PER_SWITCH)]


async def ipc(settings, image) -> list[Count]:
    """Boots configs/pingpong.yaml and reports ping's figures, measured in one run."""
    return ping_figures(await _console(settings, image, "pingpong", fatal=_PING_FAILED))


# What the kernel (natively) and the bench server (as wasm) print for each compute kernel.
_COMPUTED = re.compile(r"^(?P<side>native|\[bench\]) (?P<name>\w+): (?P<count>\d+) instructions, "
                       r"checksum (?P<checksum>[0-9a-f]{8})$", re.M)
# Issue 15's targets: wasmtime on Linux is commonly 1.1-1.5x native.
WASM_RATIO_TARGET, WASM_GEOMEAN_TARGET = 1.6, 1.3


def computed(serial: str) -> dict[str, dict[str, tuple[int, str]]]:
    """{"native"|"wasm": {kernel: (instructions, checksum)}} from a wasm-vs-native boot's console."""
    sides: dict[str, dict[str, tuple[int, str]]] = {"native": {}, "wasm": {}}
    for found in _COMPUTED.finditer(serial):
        side = "native" if found["side"] == "native" else "wasm"
        sides[side][found["name"]] = (int(found["count"]), found["checksum"])
    return sides


async def wasm_vs_native(settings, image) -> list[Count]:
    """Boots configs/wasm-vs-native.yaml: the same C, natively in the kernel and as a wasm server.
    Each kernel's figure is wasm instructions / native instructions; a different checksum is a
    wrong answer, not a figure."""
    serial = await _console(settings, image, "wasm-vs-native")
    sides = computed(serial)
    if not sides["native"]:
        raise BenchError(f"the kernel did not run its native benchmark (bench=native):\n{serial[-2000:]}")
    return ratios(sides)


def ratios(sides: dict[str, dict[str, tuple[int, str]]]) -> list[Count]:
    """Each kernel's wasm instructions / native instructions, and their geometric mean."""
    if sides["native"].keys() != sides["wasm"].keys():
        raise BenchError(f"kernels run natively {sorted(sides['native'])} and as wasm {sorted(sides['wasm'])} differ")
    figures = []
    for name, (native, checksum) in sides["native"].items():
        wasm, wasm_checksum = sides["wasm"][name]
        if wasm_checksum != checksum:
            raise BenchError(f"{name}: the wasm checksum {wasm_checksum} differs from the native {checksum}")
        figures.append(Count(f"wasm/native {name}", wasm / native, "ratio", WASM_RATIO_TARGET, f"{wasm} / {native}"))
    geomean = math.exp(statistics.fmean(math.log(f.value) for f in figures))
    return figures + [Count("wasm/native geometric mean", geomean, "ratio", WASM_GEOMEAN_TARGET)]


# What the kernel prints when a server is ready to run `_start` (wasm/server.rs): cycles are
# guest instructions under -icount shift=0; the code address comes with a first start.
SERVER_READY = re.compile(r"^server (?P<name>\w+): (?P<file>\S+) ready in \d+ us, (?P<cycles>\d+) cycles "
                          r"\(\d+ bytes, (?P<first>first start|module kept from an earlier start)"
                          r"(, code at (?P<code>0x[0-9a-f]+))?\) at TSC (?P<tsc>\d+)$", re.M)
# Issue 15's target: a restart costs at most a fifth of the first start.
RESTART_TARGET = 0.2


def starts(serial: str, server: str) -> tuple[int, list[int]]:
    """The instructions of `server`'s first start and of each start after it."""
    found = [(int(m["cycles"]), m["first"] == "first start") for m in SERVER_READY.finditer(serial) if m["name"] == server]
    if not found or not found[0][1] or any(first for _, first in found[1:]):
        raise BenchError(f"expected one first start of {server} and restarts after it, found {found}")
    return found[0][0], [cycles for cycles, _ in found[1:]]


async def server_start(settings, image) -> list[Count]:
    """Boots configs/server-start.yaml: init restarts a server that faults at once."""
    first, restarts = starts(await _console(settings, image, "server-start", timeout=120), "fault_oob")
    if not restarts:
        raise BenchError("fault_oob was not restarted")
    restart = statistics.median(restarts)
    return [Count("server first start", first, "instructions"),
            Count("server restart (median)", restart, "instructions", detail=f"{len(restarts)} restarts"),
            Count("server restart / first start", restart / first, "ratio", RESTART_TARGET)]


# Issue 15's target: Kwast's boot at most twice the wall time of a kernel that does nothing.
BOOT_WALL_TARGET = 2.0
ANCHOR_SOURCE = "kernel/anchor/trivial.S"


@dataclass
class Anchor:
    """A kernel image the Machine boots like Kwast's: the trivial one, which declares no exit
    codes in DWARF; it writes 0 to isa-debug-exit, which QEMU turns into status 1."""
    path: Path
    exit_codes = {"Success": 1, "Failure": 3}


def anchor(settings) -> Anchor:
    """Builds the trivial Multiboot kernel (kernel/anchor/trivial.S) into build/anchor/, with
    clang and lld as everything else is built, through the build's own step runner."""
    out = settings.build_dir / "anchor"
    out.mkdir(parents=True, exist_ok=True)
    image = out / "trivial.elf"
    steps = [build.BuildStep("trivial kernel", ["clang", "--target=i386-none-elf", "-c", str(settings.root / ANCHOR_SOURCE),
                                                "-o", str(out / "trivial.o")], settings.root),
             build.BuildStep("trivial kernel", ["ld.lld", "-m", "elf_i386", "-Ttext=0x100000", "-e", "_start",
                                                "-o", str(image), str(out / "trivial.o")], settings.root)]
    try:
        for step in steps:
            build.run_step(step)
    except build.BuildError as error:
        raise BenchError(f"{error}\n" + "\n".join(error.output)) from None
    return Anchor(image)


async def _until_ready(settings, hardware, image, servers: list[str], timeout: float = 120) -> tuple[float, str]:
    """Boots until every one of `servers` is ready; the wall time from QEMU's start, and the console."""
    ready = asyncio.Event()

    def seen(_: str) -> None:
        if {m["name"] for m in SERVER_READY.finditer(machine.serial_text)} >= set(servers):
            ready.set()

    started = time.monotonic()
    async with Machine(settings, hardware, image, on_serial=seen) as machine:
        await machine.resume()
        try:
            await asyncio.wait_for(ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise BenchError(f"not every one of {servers} was ready in {timeout} s:\n{machine.serial_text[-2000:]}")
        return time.monotonic() - started, machine.serial_text


async def boot_figures(settings, image) -> list[Count]:
    """configs/desktop.yaml booted until init, console and ps2 are ready: its guest instructions
    (from reset, firmware included, under -icount shift=0) and its wall time (as configured),
    against the wall time of the trivial kernel exiting at once, in the same run."""
    hardware = config.load(settings.configs_dir / "desktop.yaml")
    servers = [server.name for server in hardware.servers]
    _, serial = await _until_ready(settings, dataclasses.replace(hardware, icount=True), image, servers)
    instructions = max(int(m["tsc"]) for m in SERVER_READY.finditer(serial))
    kwast, _ = await _until_ready(settings, hardware, image, servers)
    started = time.monotonic()
    outcome = await boot(settings, dataclasses.replace(hardware, servers=[]), anchor(settings), timeout=60)
    trivial = time.monotonic() - started
    if not outcome.ok:
        raise BenchError(f"the trivial kernel did not exit as it should ({outcome.describe()})")
    return [Count("boot to desktop ready", instructions, "instructions", detail="from reset, firmware included"),
            Count("boot wall time / trivial kernel's", kwast / trivial, "ratio", BOOT_WALL_TARGET,
                  f"{kwast:.2f} s / {trivial:.2f} s")]


# What kernel/src/parallel_bench.rs prints (bench=parallel): the median pair of rounds, and
# every pair's ratio.
_PARALLEL = re.compile(r"^parallel: (?P<servers>\d+) servers on 1 CPU: (?P<one>\d+) cycles, "
                       r"on (?P<cpus>\d+) CPUs: (?P<many>\d+) cycles.*?(?:\((?P<pairs>median of .*)\))?$", re.M)
# Issue 16's target: two CPUs on a two-core host at least 1.7 times as fast as one.
SPEEDUP_TARGET = 1.7


def speedup(serial: str, others: float | None = None, host: float | None = None) -> Count:
    """The figure from the kernel's line; `others`: host cores the rest of the host kept busy
    meanwhile (`HostLoad`), and `host`: the host's own speed-up of the same program run natively
    (`HostParallel`), said beside it, as a speed-up needs the cores to itself."""
    found = _PARALLEL.search(serial)
    if found is None:
        raise BenchError(f"the kernel did not run its parallel benchmark (bench=parallel):\n{serial[-2000:]}")
    one, many, cpus = int(found["one"]), int(found["many"]), int(found["cpus"])
    return Count(f"speed-up, {cpus} compute servers on {cpus} CPUs", one / many, "ratio", SPEEDUP_TARGET,
                 f"guest time on 1 CPU / on {cpus}; host has {os.cpu_count()} cores"
                 + (f", {others:.2f} of them busy with other work meanwhile" if others is not None else "")
                 + (f", {host:.2f} as fast running it natively two at once" if host is not None else "")
                 + (f"; {found['pairs']}" if found["pairs"] else ""), at_least=True)


class HostLoad:
    """Host cores kept busy by everything but this process and its children (QEMU), steal time
    included, between `__enter__` and `__exit__`: from /proc/stat and `os.times`."""

    def __enter__(self) -> HostLoad:
        self._start = (self._busy(), self._ours(), time.monotonic())
        return self

    def __exit__(self, *_) -> None:
        busy, ours, at = self._busy(), self._ours(), time.monotonic()
        self.cores = max(0.0, (busy - self._start[0]) - (ours - self._start[1])) / max(at - self._start[2], 1e-6)

    @staticmethod
    def _busy() -> float:
        # user nice system idle iowait irq softirq steal: all but idle and iowait, in seconds.
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system


async def smp(settings, image) -> list[Count]:
    """Two figures of several CPUs. The speed-up (configs/parallel.yaml, multi-threaded TCG):
    one compute server per CPU, all on one CPU, then one on each, in one boot. The cross-CPU
    call+reply (configs/pingpong-cross.yaml, counted): ping and pong on two CPUs, beside the
    same figure on one (configs/pingpong.yaml)."""
    try:
        host = HostParallel(compute_for_host(settings))
    except build.BuildError as error:
        raise BenchError(f"{error}\n" + "\n".join(error.output)) from None
    host.measure()
    with HostLoad() as load:
        serial = await _console(settings, image, "parallel")
    host.measure()
    faster = speedup(serial, load.cores, host.speedup)
    same = {c.name: c for c in ping_figures(await _console(settings, image, "pingpong", fatal=_PING_FAILED))}["IPC 64-byte call+reply"]
    across = _PING.finditer(await _console(settings, image, "pingpong-cross", fatal=_PING_FAILED))
    call = next((int(m["median"]) for m in across if m["what"] == "64-byte call+reply"), None)
    if call is None:
        raise BenchError("ping did not report its call+reply across CPUs")
    return [faster,
            Count("host's own speed-up, the same program natively", host.speedup, "ratio",
                  detail=f"servers/compute on the host, median of {len(host.ratios)} pairs just before and after"),
            Count("IPC 64-byte call+reply across CPUs", call, "instructions", detail=f"same CPU: {same.value:.0f}"),
            Count("call+reply across CPUs / same CPU", call / same.value, "ratio")]


class BenchError(Exception):
    pass
