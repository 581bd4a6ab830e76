"""Hardware configs (`configs/*.yaml`): the one model the CLI, the TUI and pytest all use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from . import yamlmodel
from .yamlmodel import check, parser

# CPU models we know how to describe to the wasm precompiler (its target features).
CPU_MODELS = ("qemu64", "Nehalem", "Westmere", "SandyBridge", "IvyBridge", "Haswell",
              "Broadwell", "Skylake-Client", "max")

MIN_MEMORY = 16 << 20
# The linear memory a server may grow to unless its config says otherwise (as in the kernel).
SERVER_MEMORY = 16 << 20
# The kernel identity-maps the first 4 GiB, and QEMU's pc machine puts a PCI hole below 4 GiB.
MAX_MEMORY = 3 << 30

_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)i?B?\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")


def memory_size(raw: object) -> int:
    """`128M`, `1G`, `65536K` or a plain number of bytes."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    match = _SIZE.match(str(raw))
    if not match:
        raise ValueError(f"{raw!r} is not a size (write e.g. 128M or 1G)")
    number, unit = match.groups()
    return int(number) << {"": 0, "K": 10, "M": 20, "G": 30}[unit.upper()]


def duration_ms(raw: object) -> int:
    """`5s`, `1.5s` or `500ms`, in milliseconds."""
    match = _DURATION.match(str(raw))
    if not match:
        raise ValueError(f"{raw!r} is not a duration (write e.g. 5s or 500ms)")
    number, unit = match.groups()
    return round(float(number) * (1000 if unit == "s" else 1))


@dataclass(frozen=True)
class Cpu:
    model: Literal[CPU_MODELS] = "qemu64"  # type: ignore[valid-type]
    count: int = field(default=1, metadata=check(lambda n: 1 <= n <= 64, "must be between 1 and 64"))
    # single: QEMU runs every vCPU in one host thread, in turns (repeatable; icount needs it);
    # multi: one host thread per vCPU (multi-threaded TCG), so CPUs really run in parallel.
    threads: Literal["single", "multi"] = "single"


@dataclass(frozen=True)
class Server:
    """A wasm server passed to the kernel as a Multiboot module."""

    name: str = field(metadata=check(lambda s: re.fullmatch(r"[a-z0-9_-]+", s) is not None,
                                     "must be a server directory name under servers/ (a-z, 0-9, _ and -)"))
    args: list[str] = field(default_factory=list, metadata=check(
        lambda args: all("," not in a and a.strip() == a and a for a in args),
        "arguments must be non-empty, without commas or surrounding spaces (QEMU splits modules on commas)"))
    # An artifact file to pass instead of the one `kwast-bench build` made for the CPU model
    # (relative to the repository root): to try a modified or foreign artifact.
    artifact: str | None = field(default=None, metadata=check(
        lambda path: path is None or ("," not in path and " " not in path),
        "an artifact path must not contain commas or spaces"))
    # The linear memory it may grow to: past it, memory.grow returns -1 and malloc NULL.
    memory: int = field(default=SERVER_MEMORY, metadata={
        **parser(memory_size),
        **check(lambda m: 64 << 10 <= m <= 4 << 30, "must be between 64K and 4G (wasm32's whole address space)"),
    })
    # Kill it after this much CPU time without a kernel call (`5s`, `500ms`); none by default:
    # computing is not a fault.
    watchdog: int | None = field(default=None, metadata={
        **parser(lambda raw: None if raw is None else duration_ms(raw)),
        **check(lambda ms: ms is None or ms > 0, "must be longer than 0 ms"),
    })
    # The CPU its thread runs on, for good (a CPU the machine does not have is reported at
    # boot, and the scheduler places it); none by default: the scheduler places it and may move it.
    cpu: int | None = field(default=None, metadata=check(lambda n: n is None or 0 <= n < 64, "must be between 0 and 63"))

    def module_settings(self) -> list[str]:
        """The kernel's settings for this server, as its Multiboot module command line has them
        (before `--`; wasm/mod.rs reads them)."""
        settings = [f"memory={self.memory}"]
        if self.watchdog is not None:
            settings.append(f"watchdog_ms={self.watchdog}")
        if self.cpu is not None:
            settings.append(f"cpu={self.cpu}")
        return settings


@dataclass(frozen=True)
class HardwareConfig:
    description: str = ""
    memory: int = field(default=128 << 20, metadata={
        **parser(memory_size),
        **check(lambda m: MIN_MEMORY <= m <= MAX_MEMORY, "must be between 16M and 3G"),
    })
    cpu: Cpu = field(default_factory=Cpu)
    serial: bool = True
    isa_debug_exit: bool = True
    ps2_keyboard: bool = True
    display: Literal["none", "vga"] = "none"
    cmdline: str = ""
    # A scratch qcow2 disk (attached to no device) that holds savevm/loadvm snapshots.
    snapshots: bool = False
    # Count guest instructions (-icount shift=0): the TSC then advances one per instruction,
    # so cycle figures are repeatable under TCG. Benchmarks use it.
    icount: bool = False
    # With icount, each guest instruction takes 2**icount_shift ns of guest time, and the guest
    # clock stands still while the CPU is idle only as long as no timer is due (sleep=off): time
    # in the guest is counted, never measured on the host. A higher shift lets a long guest-time
    # scenario run in seconds.
    icount_shift: int = field(default=0, metadata=check(lambda n: 0 <= n <= 10, "must be between 0 and 10"))
    servers: list[Server] = field(default_factory=list)
    path: Path | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.icount and self.cpu.threads == "multi":
            raise ValueError("icount counts instructions in one host thread: it cannot be used with cpu.threads: multi")


def load(path: Path | str) -> HardwareConfig:
    """Reads and validates a hardware config; raises `ConfigError` naming file, line and field."""
    config = yamlmodel.load(Path(path), HardwareConfig)
    object.__setattr__(config, "path", Path(path))
    return config
