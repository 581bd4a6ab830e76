"""`kwast-bench build` and `kwast-bench boot [--name N]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .. import build, config, session
from ..kernel_image import KernelImage
from ..qemu import boot
from .status import EXIT_BUILD_FAILED, EXIT_KERNEL_FAILED, EXIT_TIMEOUT


def add_parsers(commands) -> None:
    commands.add_parser("build", help="build the kernel and the wasm servers (incremental)")

    boot_parser = commands.add_parser("boot", help="boot a hardware config in QEMU, stream the serial console")
    boot_parser.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    boot_parser.add_argument("--timeout", type=float, help="seconds before the guest is stopped (default: from workbench.toml)")
    boot_parser.add_argument("--append", default="", help="extra kernel command-line words, e.g. test=NAME")
    boot_parser.add_argument("--name", help="register this machine as a session that `state`/`gdb --session NAME` attach to")


def cmd_build(args: argparse.Namespace, settings) -> int:
    try:
        build.build_all(settings, on_line=print)
    except build.BuildError as error:
        print(f"\nkwast-bench: {error}", file=sys.stderr)
        return EXIT_BUILD_FAILED
    return 0


def cmd_boot(args: argparse.Namespace, settings) -> int:
    hardware = config.load(args.config or settings.default_config)
    timeout = args.timeout if args.timeout is not None else settings.boot_timeout
    with KernelImage(settings.kernel_elf) as image:
        on_serial = lambda text: print(text, end="", flush=True)  # noqa: E731
        if args.name:
            outcome = asyncio.run(session.boot_named(settings, hardware, image, timeout, args.append, on_serial, args.name))
        else:
            outcome = asyncio.run(boot(settings, hardware, image, timeout, args.append, on_serial=on_serial))
    if outcome.serial and not outcome.serial.endswith("\n"):
        print()
    print(f"kwast-bench: {outcome.describe()}", file=sys.stderr)
    return {"success": 0, "timeout": EXIT_TIMEOUT}.get(outcome.status, EXIT_KERNEL_FAILED)


COMMANDS = {"build": cmd_build, "boot": cmd_boot}
