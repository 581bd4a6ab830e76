"""The machine: one QEMU at a time, owned by the `VmStatus` bar that always shows its state.

The bar runs `qemu.Machine` in Textual's own asyncio loop (qemu.qmp is asyncio), works it
through the machine's verbs, and follows QMP events (STOP, RESUME, RESET, SHUTDOWN) for the
status it shows. It posts `Booted` when a
machine is up, `Serial` for console output and `Ended` when QEMU is gone; every way out (the
guest exiting, `stop()`, the app quitting) ends QEMU. The machine is a fresh boot (`boot`) or a
recorded run replayed for GDB (`replay`, through workbench/replay.py's `debugged`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from pathlib import Path

from qemu.qmp import EventListener
from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from ..config import HardwareConfig
from ..kernel_image import KernelImage, KernelImageError
from ..qemu import Machine, QemuError
from ..qemu.keys import for_line
from ..replay import (FOLDER, ReplayError, debugged, gdb_commands, recording_folder, rewound_console,
                      scenario_of)
from ..settings import Settings
from ..yamlmodel import ConfigError

# What the kernel prints first on every boot, and how long a reset may take to bring it back.
BANNER = " booting\n"
REBOOT_TIMEOUT = 30

# Why a booted machine cannot go backwards (a replay can).
LIVE_NO_REVERSE = "going back needs a replay: open a recording in the Scenarios pane"

# What each QMP event says about the guest.
_STATUS_BY_EVENT = {"STOP": "paused", "RESUME": "running", "SHUTDOWN": "shutting down"}


class VmError(Exception):
    pass


class VmStatus(Static):
    """`status` is off, starting, running, paused, shutting down, or how the last run ended."""

    status: reactive[str] = reactive("off")
    config_name: reactive[str] = reactive("")
    replaying: reactive[str] = reactive("")  # the recording's folder name while a replay is the machine

    class Booted(Message):
        """`replay`: the recording when the machine replays one (held at its first instruction);
        `no_reverse`: why GDB cannot go backwards on it, None when it can."""

        def __init__(self, machine: Machine, elf: Path, replay: Path | None = None,
                     no_reverse: str | None = LIVE_NO_REVERSE, gdb_setup: list[str] | None = None) -> None:
            super().__init__()
            self.machine, self.elf, self.replay, self.no_reverse = machine, elf, replay, no_reverse
            self.gdb_setup = gdb_setup or []  # GDB commands to run once attached (`replay.gdb_commands`)

    class Serial(Message):
        """Console text to add, or with `replace` the whole console (a replay taken back)."""

        def __init__(self, text: str, replace: bool = False) -> None:
            super().__init__()
            self.text, self.replace = text, replace

    class Ended(Message):
        def __init__(self, description: str) -> None:
            super().__init__()
            self.description = description

    def __init__(self, settings: Settings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.machine: Machine | None = None
        self._stack: contextlib.AsyncExitStack | None = None  # what ends the machine and its image
        # A replay's recorded console; where in the machine's console bytes the shown console
        # starts (later after going back); and, while GDB takes it back, where the bytes were then.
        self._recorded = b""
        self._console_from = 0
        self._back_from: int | None = None
        self._dumps = itertools.count(1)

    def render(self) -> str:
        what = f"replay [b]{self.replaying}[/b]" if self.replaying else f"config [b]{self.config_name or '-'}[/b]"
        return f"VM [b]{self.status}[/b]  {what}"

    def watch_status(self, old: str, new: str) -> None:
        # The first word is the state (CSS: #vm.-running); the rest says why.
        self.remove_class(f"-{re.match(r'[a-z]+', old).group()}")
        self.add_class(f"-{re.match(r'[a-z]+', new).group()}")

    @property
    def running(self) -> bool:
        return self.machine is not None

    # --- lifecycle ----------------------------------------------------------------------

    async def boot(self, config: HardwareConfig, cmdline: str = "") -> None:
        """Starts QEMU on `config` with extra kernel command-line words; raises VmError if it cannot."""
        self._refuse_second()
        machine = await self._start(_booted(self.settings, config, cmdline, self._serial))
        self.replaying = ""
        self.post_message(self.Booted(machine, machine.image.path))
        await machine.resume()

    async def replay(self, folder: Path) -> None:
        """Replays the recording in `folder` (an artifact folder or its recording/), held at its
        first instruction for GDB, with snapshots to go backwards."""
        self._refuse_second()
        recorded = recording_folder(folder)
        try:
            scenario_of(recorded)
        except (ReplayError, ConfigError) as error:
            raise VmError(f"cannot replay {folder}: {error}") from None
        opening = debugged(recorded, self.settings, reverse=True, on_note=self._note, on_serial=self._serial)
        machine = await self._start(opening, f"cannot replay {folder}: ")
        self._recorded = (recorded / "serial.bin").read_bytes()
        self.replaying = (recorded.parent if recorded.name == FOLDER else recorded).name
        self.status = "paused at the replay's first instruction"
        self.post_message(self.Booted(machine, machine.image.path, recorded, no_reverse=None, gdb_setup=gdb_commands(machine)))

    def _refuse_second(self) -> None:
        if self.machine is not None:
            raise VmError("a machine is already running: stop it first (ctrl+o)")

    async def _start(self, opening: contextlib.AbstractAsyncContextManager[Machine], why: str = "") -> Machine:
        """Enters `opening` (it starts the machine, and ends it when left) and follows the machine."""
        self.status = "starting"
        stack = contextlib.AsyncExitStack()
        try:
            machine = await stack.enter_async_context(opening)
        except (KernelImageError, QemuError, OSError, ReplayError, ConfigError) as error:
            self.status = "off"  # `opening` has ended what it started
            raise VmError(f"{why}{error}") from None
        self.machine, self._stack = machine, stack
        self._console_from, self._back_from = 0, None
        listener = EventListener()
        machine.qmp.register_listener(listener)
        self._follow_events(listener)
        self._wait_exit(machine)
        return machine

    def _note(self, text: str) -> None:
        self.notify(text.removeprefix("kwast-bench: "), timeout=15)

    def _serial(self, text: str) -> None:
        if self._back_from is None:  # going back, the replay writes passes from the start: not shown
            self.post_message(self.Serial(text))

    def going_back(self) -> None:
        """GDB is about to take the replay back; `went_back` shows the console of where it stops."""
        if self.machine is not None and self.replaying:
            self._back_from = len(self.machine.serial_bytes)

    async def went_back(self, moved: bool) -> None:
        """After going back (`moved`: the guest is elsewhere now), the console as it was there."""
        since, self._back_from = self._back_from, None
        machine = self.machine
        if since is None or machine is None:
            return
        await machine.serial_settled()
        written = bytes(machine.serial_bytes)
        if moved:
            shown = rewound_console(self._recorded, written[since:], since - self._console_from)
            self._console_from = len(written) - shown
        text = written[self._console_from:].decode(errors="replace").replace("\r", "")
        self.post_message(self.Serial(text, replace=True))

    @work(group="vm-events")
    async def _follow_events(self, listener: EventListener) -> None:
        async for event in listener:
            if event["event"] == "RESET" and self.machine is not None:
                # A reset keeps the run state it happened in.
                self.status = "running" if await self.machine.running() else "paused"
            else:
                self.status = _STATUS_BY_EVENT.get(event["event"], self.status)

    @work(group="vm-exit")
    async def _wait_exit(self, machine: Machine) -> None:
        # No time limit: the user decides when this machine ends.
        outcome = await machine.wait_exit(timeout=float("inf"))
        await self._release(machine)
        self.status = f"off: {outcome.describe()}"
        self.post_message(self.Ended(outcome.describe()))

    async def stop(self) -> None:
        """Ends QEMU (quit, then kill) and everything it used."""
        if self.machine is not None:
            await self._release(self.machine)
            self.status = "off: stopped"
            self.post_message(self.Ended("stopped"))

    async def _release(self, machine: Machine) -> None:
        if self.machine is not machine:
            return  # already released by the other path
        self.machine = None
        self.workers.cancel_group(self, "vm-events")
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def on_unmount(self) -> None:
        await self.stop()

    # --- controls -----------------------------------------------------------------------

    def _machine(self) -> Machine:
        if self.machine is None:
            raise VmError("no machine is running: boot one first (F2)")
        return self.machine

    async def pause_or_continue(self) -> None:
        machine = self._machine()
        await (machine.pause() if await machine.running() else machine.resume())

    async def reset(self) -> None:
        machine = self._machine()
        # Machines run with -no-reboot, which turns every reset into an exit. After a reset the
        # firmware (SeaBIOS) reboots once more by itself, through port 0xcf9, before the kernel
        # runs again: reboots stay allowed until the kernel's banner shows up anew.
        banners = machine.serial_text.count(BANNER)
        async with machine.reboots_allowed():
            await machine.reset()
            deadline = time.monotonic() + REBOOT_TIMEOUT
            while machine.serial_text.count(BANNER) <= banners and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

    async def send_text(self, text: str) -> int:
        """Types `text` on the guest's PS/2 keyboard, `<name>` as a named key (`<f12>`); returns
        how many keys it pressed."""
        machine, sent = self._machine(), 0
        for piece, keys in for_line(text):
            sent += await machine.send_keys(piece, keys)
        return sent

    async def screendump(self) -> Path:
        machine = self._machine()
        directory = self.settings.build_dir / "screendumps"
        directory.mkdir(parents=True, exist_ok=True)
        # Numbered on from what earlier sessions left: a dump never overwrites another.
        path = next(p for n in self._dumps if not (p := directory / f"screen-{n}.ppm").exists())
        await machine.screendump(path)
        return path

    async def savevm(self, tag: str = "kwast") -> None:
        await self._machine().save_snapshot(tag)

    async def loadvm(self, tag: str = "kwast") -> None:
        await self._machine().load_snapshot(tag)


@contextlib.asynccontextmanager
async def _booted(settings: Settings, config: HardwareConfig, cmdline: str, on_serial):
    with KernelImage(settings.kernel_elf) as image:
        # RAM in a file: the live views read it without stopping the guest.
        async with Machine(settings, config, image, cmdline, on_serial=on_serial, ram_file=True) as machine:
            yield machine
