"""`kwast-bench state` and `gdb`: the workbench's eyes on a running kernel.

`state` and `gdb` attach to a running `kwast-bench boot --name N` with `--session N`; without it
they boot their own machine (with `hold`, so it stays up) and end it when done.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Sequence

from .. import config, session
from ..dwarf import LayoutError
from ..gdb import GDB, Gdb, GdbError
from ..kernel_image import KernelImage
from ..qemu import Machine
from ..state import DebugStateError, StateReader, memory_of, wait_published
from ..state_rates import RateMeter
from ..state_words import snapshot_json
from ..state_view import render

# Errors that are the user's to fix: printed as one line, exit status 2.
ERRORS = (DebugStateError, GdbError, LayoutError, session.SessionError)


def add_parsers(commands) -> None:
    state = commands.add_parser("state", help="print the running kernel's threads, CPUs, IPC and events")
    _machine_options(state)
    state.add_argument("--watch", action="store_true",
                       help="refresh until Ctrl-C, with rates since the last refresh (calls/s, bytes/s, CPU %%)")
    state.add_argument("--interval", type=float, default=0.5, help="seconds between refreshes with --watch")
    state.add_argument("--events", type=int, default=16, help="how many recent events to show")
    state.add_argument("--json", action="store_true", help="print the snapshot as one JSON object (fields: docs/state-json.md); with --watch, one a line")

    gdb = commands.add_parser("gdb", help="GDB on the kernel, with its symbols, attached to QEMU's gdbstub")
    _machine_options(gdb)
    gdb.add_argument("--ex", action="append", default=[], metavar="CMD",
                     help="run this GDB command (repeatable) and print its output, then leave; "
                          "without --ex an interactive GDB starts")



def _machine_options(parser) -> None:
    parser.add_argument("--session", metavar="NAME", help="attach to `kwast-bench boot --name NAME` instead of booting")
    parser.add_argument("--config", type=Path, help="hardware config YAML when booting (default: from workbench.toml)")
    parser.add_argument("--append", default="", help="extra kernel command-line words when booting")


@contextlib.asynccontextmanager
async def _target(args, settings, run: bool):
    """(machine-like, kernel ELF path) for a named session, or for a machine booted here with `hold`."""
    if args.session:
        found = session.lookup(args.session)
        async with session.Attached(found) as attached:
            yield attached, Path(found.kernel)
        return
    hardware = config.load(args.config or settings.default_config)
    with KernelImage(settings.kernel_elf) as image:
        words = " ".join(w for w in ("hold", args.append) if w)
        async with Machine(settings, hardware, image, words, ram_file=True) as machine:
            if run:
                await machine.resume()
            yield machine, image.path


def cmd_state(args: argparse.Namespace, settings) -> int:
    async def run() -> None:
        async with _target(args, settings, run=True) as (machine, elf):
            reader, memory = StateReader(elf), memory_of(machine)
            await wait_published(reader, memory)
            known: dict = {}  # threads seen, to name events of threads gone since (--watch)
            meter = RateMeter() if args.watch else None  # rates need two snapshots
            while True:
                kernel = await reader.read(memory)
                if args.json:
                    print(json.dumps(snapshot_json(kernel, args.events, known, meter)), flush=True)
                else:
                    print(("\x1b[H\x1b[2J" if args.watch and sys.stdout.isatty() else "")
                          + render(kernel, args.events, known, meter), flush=True)
                if not args.watch:
                    return
                await asyncio.sleep(args.interval)
                if not sys.stdout.isatty():
                    print()

    asyncio.run(run())
    return 0


def cmd_gdb(args: argparse.Namespace, settings) -> int:
    async def run() -> int:
        # Our own machine stays held at reset (-S): break where you like, then `continue`.
        async with _target(args, settings, run=False) as (machine, elf):
            if not args.ex:
                return await interactive_gdb(elf, machine.gdb_socket)
            return await asyncio.to_thread(scripted_gdb, elf, machine.gdb_socket, args.ex)

    return asyncio.run(run())


async def interactive_gdb(elf: Path, socket: Path, setup: Sequence[str] = ()) -> int:
    """The real GDB CLI on the terminal, running `setup` once attached; the machine lives until it quits."""
    extra = [arg for command in setup for arg in ("-ex", command)]
    gdb = await asyncio.create_subprocess_exec(GDB, "--nx", "-q", str(elf), "-ex", f"target remote {socket}", *extra)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is GDB's: it stops the guest
    try:
        return await gdb.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        if gdb.returncode is None:  # an error here: GDB ends with us
            gdb.kill()
            await gdb.wait()


def scripted_gdb(elf: Path, socket: Path, commands: list[str], setup: Sequence[str] = ()) -> int:
    with Gdb(elf, socket, setup=setup) as gdb:
        for command in commands:
            print(f"(gdb) {command}")
            try:
                print(gdb.console(command), end="", flush=True)
            except GdbError as error:
                print(f"error: {error}", flush=True)
                return 1
    return 0


COMMANDS = {"state": cmd_state, "gdb": cmd_gdb}
