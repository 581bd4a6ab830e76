"""`kwast-bench bench [--suite NAME] [--json FILE]`: the workbench's latency, the kernel's IPC
cost, wasm against native code."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from .. import bench, bench_history, config
from ..kernel_image import KernelImage
from .status import EXIT_KERNEL_FAILED


SUITES = ("latency", "ipc", "wasm", "start", "boot", "smp")


def add_parsers(commands) -> None:
    measure = commands.add_parser("bench", help="measure the workbench's latency, IPC cost, wasm against native code")
    measure.add_argument("--suite", choices=SUITES, action="append",
                         help="run only this suite (repeatable; default: all): latency (kernel state reads, GDB), "
                              "ipc (ping/pong), wasm (the same C as wasm and native), start (a server's first start and restarts), "
                              "boot (configs/desktop.yaml against a kernel that does nothing), "
                              "smp (the speed-up of two CPUs, IPC across CPUs)")
    measure.add_argument("--json", type=Path, metavar="FILE", help="also write every figure (name, value, unit, target, met)")
    measure.add_argument("--history", action="store_true",
                         help="keep this run's figures under the git commit in build/bench-history.json and draw "
                              "each figure across commits (build/bench-history/*.svg)")
    measure.add_argument("--config", type=Path, help="hardware config YAML for the latency suite (default: from workbench.toml)")
    measure.add_argument("-n", type=int, default=200, help="samples per latency figure")


def cmd_bench(args: argparse.Namespace, settings) -> int:
    suites = args.suite or SUITES
    figures = []
    with KernelImage(settings.kernel_elf) as image:
        try:
            for suite in suites:
                if suite == "latency":
                    hardware = config.load(args.config or settings.default_config)
                    measured = asyncio.run(bench.measure(settings, hardware, image, args.n))
                else:
                    measured = asyncio.run({"ipc": bench.ipc, "wasm": bench.wasm_vs_native, "start": bench.server_start,
                                          "boot": bench.boot_figures, "smp": bench.smp}[suite](settings, image))
                for figure in measured:
                    print(figure.line(), flush=True)
                figures += [{"suite": suite, **figure.record()} for figure in measured]
        except bench.BenchError as error:
            print(f"kwast-bench: {error}", file=sys.stderr)
            return EXIT_KERNEL_FAILED
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    if args.history:
        measured = bench_history.commit(settings.root)
        runs = bench_history.append(settings.build_dir / "bench-history.json", measured, figures)
        charts = bench_history.charts(runs, settings.build_dir / "bench-history")
        print(f"history: {len(runs)} runs, this one as {measured}; {len(charts)} charts in {settings.build_dir / 'bench-history'}")
    return 0


COMMANDS = {"bench": cmd_bench}
