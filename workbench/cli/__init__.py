"""The `kwast-bench` command: one module per group of commands, each with `add_parsers` and
`COMMANDS`; exit statuses in `status`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .. import settings as settings_module
from ..kernel_image import KernelImageError
from ..qemu import QemuError
from ..scenario import command as scenario_command
from ..settings import SettingsError
from ..yamlmodel import ConfigError
from . import bench, boot, inspect, profile, trace
from .status import EXIT_INTERRUPTED, EXIT_USAGE

_GROUPS = (boot, inspect, bench, profile, trace)


def _cmd_tui(args: argparse.Namespace, settings: settings_module.Settings) -> int:
    from ..tui.app import run  # Textual loads only for the TUI

    return run(settings, getattr(args, "config", None), getattr(args, "append", ""))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kwast-bench", description="Build, boot, debug and test the Kwast kernel.")
    # No command opens the interactive workbench (`tui`) on the default config.
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    tui_parser = commands.add_parser("tui", help="the interactive workbench (also what `kwast-bench` alone opens)")
    tui_parser.add_argument("--config", type=Path, help="hardware config YAML (default: from workbench.toml)")
    tui_parser.add_argument("--append", default="", help="extra kernel command-line words for boots, e.g. hold")
    for group in _GROUPS:
        group.add_parsers(commands)
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
    commands = {name: command for group in _GROUPS for name, command in group.COMMANDS.items()}
    commands["run"] = scenario_command.cmd_run
    commands["replay"] = scenario_command.cmd_replay
    try:
        settings = settings_module.load()
        if args.command in (None, "tui"):
            return _cmd_tui(args, settings)
        return commands[args.command](args, settings)
    except (ConfigError, SettingsError, KernelImageError, QemuError, *inspect.ERRORS) as error:
        print(f"kwast-bench: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nkwast-bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
