"""The `kwast-bench` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from . import build, config, debug_cli, settings as settings_module
from .scenario import command as scenario_command
from .kernel_image import KernelImage, KernelImageError
from .qemu import QemuError, boot
from .settings import SettingsError
from .yamlmodel import ConfigError

# Exit statuses of `kwast-bench boot`, beside 0 for a clean kernel shutdown.
EXIT_KERNEL_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 124


def _cmd_build(args: argparse.Namespace, settings: settings_module.Settings) -> int:
    try:
        build.build_all(settings, on_line=print)
    except build.BuildError as error:
        print(f"\nkwast-bench: {error}", file=sys.stderr)
        return EXIT_KERNEL_FAILED
    return 0


def _cmd_boot(args: argparse.Namespace, settings: settings_module.Settings) -> int:
    hardware = config.load(args.config or settings.default_config)
    timeout = args.timeout if args.timeout is not None else settings.boot_timeout
    with KernelImage(settings.kernel_elf) as image:
        on_serial = lambda text: print(text, end="", flush=True)  # noqa: E731
        if args.name:
            outcome = asyncio.run(debug_cli.boot_named(settings, hardware, image, timeout, args.append, on_serial, args.name))
        else:
            outcome = asyncio.run(boot(settings, hardware, image, timeout, args.append, on_serial=on_serial))
    if outcome.serial and not outcome.serial.endswith("\n"):
        print()
    print(f"kwast-bench: {outcome.describe()}", file=sys.stderr)
    return {"success": 0, "timeout": EXIT_TIMEOUT}.get(outcome.status, EXIT_KERNEL_FAILED)


def _cmd_tui(args: argparse.Namespace, settings: settings_module.Settings) -> int:
    from .tui.app import run  # Textual loads only for the TUI

    return run(settings, getattr(args, "config", None), getattr(args, "append", ""))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kwast-bench", description="Build, boot, debug and test the Kwast kernel.")
    # No command opens the interactive workbench (`tui`) on the default config.
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("build", help="build the kernel and the wasm servers (incremental)")

    tui_parser = commands.add_parser("tui", help="the interactive workbench (also what `kwast-bench` alone opens)")
    tui_parser.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    tui_parser.add_argument("--append", default="", help="extra kernel command-line words for boots, e.g. hold")

    boot_parser = commands.add_parser("boot", help="boot a hardware config in QEMU, stream the serial console")
    boot_parser.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    boot_parser.add_argument("--timeout", type=float, help="seconds before the guest is stopped (default: from workbench.toml)")
    boot_parser.add_argument("--append", default="", help="extra kernel command-line words, e.g. test=NAME")
    debug_cli.add_boot_options(boot_parser)
    debug_cli.add_parsers(commands)
    scenario_command.add_parser(commands)
    return top


def _take_ctrl_c() -> None:
    """Ctrl-C must end whatever we started. A process launched with SIGINT ignored (a background
    job of a shell script, some test runners) would otherwise never see it: Python then installs
    no KeyboardInterrupt handler, and asyncio none of its own."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def main(argv: list[str] | None = None) -> int:
    _take_ctrl_c()
    args = parser().parse_args(argv)
    try:
        settings = settings_module.load()
        if args.command in (None, "tui"):
            return _cmd_tui(args, settings)
        return {"build": _cmd_build, "boot": _cmd_boot, **debug_cli.COMMANDS, "run": scenario_command.cmd_run}[args.command](args, settings)
    except (ConfigError, SettingsError, KernelImageError, QemuError, *debug_cli.ERRORS) as error:
        print(f"kwast-bench: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nkwast-bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
