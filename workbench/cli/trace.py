"""`kwast-bench trace --config FILE [--seconds N] [--out FILE]`: the kernel's events, every one,
as a trace Perfetto opens (`workbench/trace.py`)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .. import config, trace
from ..kernel_image import KernelImage
from ..qemu import Machine


def add_parsers(commands) -> None:
    command = commands.add_parser("trace", help="drain the kernel's event ring while the guest runs; write a Perfetto trace")
    command.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    command.add_argument("--append", default="", help="extra kernel command-line words")
    command.add_argument("--seconds", type=float, default=10, help="how long to trace (less if the guest ends)")
    command.add_argument("--keys", default="", help="text to type into the guest (PS/2) once it has booted")
    command.add_argument("--keys-after", metavar="RE", help="... once a console line matches this (a driver is ready)")
    command.add_argument("--out", type=Path, help="the trace file (default: build/trace/trace.json; "
                                                 "its summary beside it as trace.summary.json)")


def cmd_trace(args: argparse.Namespace, settings) -> int:
    hardware = config.load(args.config or settings.default_config)
    out = args.out or settings.build_dir / "trace" / "trace.json"

    async def run():
        async with Machine(settings, hardware, image, args.append, ram_file=True) as machine:
            await machine.resume()
            return await trace.record(machine, image.path, args.seconds, args.keys, args.keys_after)

    with KernelImage(settings.kernel_elf) as image:
        drained, names, tsc_per_us = asyncio.run(run())
    path, summary = trace.write(out, drained.events, names, tsc_per_us, drained.lost)
    print(f"{len(drained.events)} events in {drained.drains} drains ({drained.holds} holding the guest), "
          f"{drained.dropped} dropped"
          + "".join(f" ({count} from event {first})" for first, count in drained.lost))
    for row in trace.summary(drained.events, names)["endpoints"]:
        latency = row["median_latency"]
        print(f"  {row['name']}: {row['calls']} calls, median call to reply "
              + ("-" if latency is None else f"{latency:.0f} TSC ticks"))
    print(f"wrote {path} (open in https://ui.perfetto.dev) and {summary}")
    return 0 if not drained.dropped else 1


COMMANDS = {"trace": cmd_trace}
