"""`kwast-bench bench`: the workbench's latency figures and the kernel's IPC cost."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .. import bench, config
from ..kernel_image import KernelImage
from .status import EXIT_KERNEL_FAILED


def add_parsers(commands) -> None:
    measure = commands.add_parser("bench", help="measure state-snapshot and GDB latency, and IPC cost (ping/pong)")
    measure.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    measure.add_argument("-n", type=int, default=200, help="samples per figure")


def cmd_bench(args: argparse.Namespace, settings) -> int:
    hardware = config.load(args.config or settings.default_config)
    with KernelImage(settings.kernel_elf) as image:
        figures = asyncio.run(bench.measure(settings, hardware, image, args.n))
        for figure in figures:
            print(figure.line())
        try:
            for line in asyncio.run(bench.ipc(settings, image)):
                print(line)
        except bench.BenchError as error:
            print(f"kwast-bench: {error}", file=sys.stderr)
            return EXIT_KERNEL_FAILED
    return 0


COMMANDS = {"bench": cmd_bench}
