"""`kwast-bench profile --config FILE [--from RE --to RE] [--out DIR] [--against DIR]`: an exact profile with call
stacks, and what changed since an earlier one."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from .. import config, profile
from ..kernel_image import KernelImage
from ..qemu import Machine
from .status import EXIT_KERNEL_FAILED, EXIT_USAGE


def add_parsers(commands) -> None:
    command = commands.add_parser("profile", help="count every guest instruction of a boot, by kernel and wasm function")
    command.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    command.add_argument("--append", default="", help="extra kernel command-line words")
    command.add_argument("--from", dest="start", metavar="RE", help="count from the end of the first console line matching this")
    command.add_argument("--to", dest="end", metavar="RE", help="... to the end of the first later line matching this")
    command.add_argument("--out", type=Path, help="where to write profile.txt, .folded, .speedscope.json and .svg "
                                                 "(the flame graph; default: build/profile)")
    command.add_argument("--top", type=int, default=25, help="functions in the printed table")
    command.add_argument("--tree", metavar="FUNCTION", action="append", default=[],
                         help="also print the calls under this function (its full name, as in the table), "
                              "heaviest first (repeatable)")
    command.add_argument("--annotate", metavar="FUNCTION", action="append", default=[],
                         help="also print each instruction of this function that ran (a kernel or wasm function, "
                              "or a call inlined, as in the table) with how often it ran (repeatable)")
    command.add_argument("--per", type=_positive, default=1, metavar="N",
                         help="divide the tree's, the annotation's and the comparison's figures by N: the "
                              "operations the window holds (round trips, say)")
    command.add_argument("--against", type=Path, metavar="DIR",
                         help="also print what changed since the profile an earlier run wrote to DIR (its --out): "
                              "the totals and the functions that changed most, divided by --per")
    command.add_argument("--timeout", type=float, default=600, help="seconds the profiled boot may take")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: the operations in the window, a number above 0")
    return value


def cmd_profile(args: argparse.Namespace, settings) -> int:
    hardware = config.load(args.config or settings.default_config)
    out = args.out or settings.build_dir / "profile"
    try:  # before the boot: a wrong folder should not cost one, and `out` may be this one
        before = profile.Profile.load(args.against) if args.against else None
    except profile.ProfileError as error:
        print(f"kwast-bench: --against: {error}", file=sys.stderr)
        return EXIT_USAGE
    with KernelImage(settings.kernel_elf) as image:
        started = time.monotonic()

        async def run():
            async with Machine(settings, hardware, image, args.append, exec_log=True) as machine:
                await machine.resume()
                outcome = await machine.wait_exit(args.timeout)
                booted = time.monotonic()
                counts, result = await asyncio.to_thread(profile.measure, machine.exec_log_path, image.path,
                                                         outcome.serial, machine.modules(), args.start, args.end)
                return outcome, counts, result, booted

        outcome, counts, result, booted = asyncio.run(run())
    if not outcome.ok:
        print(f"kwast-bench: the profiled boot did not end cleanly: {outcome.describe()}", file=sys.stderr)
        return EXIT_KERNEL_FAILED
    # The log is read to the window's end (else to its own); it must show the console written that far.
    # More is fine: the console's tail can be lost as the machine ends.
    window_end = profile.window_bytes(outcome.serial, args.start, args.end)[1]
    console = window_end or len(outcome.serial.encode()) + outcome.serial.count("\n")  # the kernel writes \r\n
    if counts.console_bytes < console:
        print(f"kwast-bench: warning: the log shows {counts.console_bytes} console bytes written, the console "
              f"has {console} to the window's end: the window may be misplaced", file=sys.stderr)
    print(result.table(args.top))
    unknown = 0
    for option, names, show in (("--tree", args.tree, result.tree), ("--annotate", args.annotate, result.annotate)):
        for name in names:
            try:
                print("\n" + show(name, args.per))
            except profile.ProfileError as error:
                print(f"kwast-bench: {option}: {error}", file=sys.stderr)
                unknown += 1
    if before is not None:
        print("\n" + result.compare(before, args.per, args.top))
    title = str(args.config or settings.default_config) + (f" from /{args.start}/" if args.start else "") + \
        (f" to /{args.end}/" if args.end else "")
    written = profile.write(result, out, title)
    (out / "serial.log").write_text(outcome.serial)
    written.append(out / "serial.log")
    print(f"\nboot {booted - started:.1f} s, log read {time.monotonic() - booted:.1f} s; wrote {', '.join(map(str, written))}")
    return EXIT_USAGE if unknown else 0


COMMANDS = {"profile": cmd_profile}
