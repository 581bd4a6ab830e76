"""The machine: one QEMU at a time, owned by the `VmStatus` bar that always shows its state.

The bar runs `qemu.Machine` in Textual's own asyncio loop (qemu.qmp is asyncio), works it
through the machine's verbs, and follows QMP events (STOP, RESUME, RESET, SHUTDOWN) for the
status it shows. It posts `Booted` when a
machine is up, `Serial` for console output and `Ended` when QEMU is gone; every way out (the
guest exiting, `stop()`, the app quitting) ends QEMU.
"""

from __future__ import annotations

import asyncio
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
from ..settings import Settings

# What the kernel prints first on every boot, and how long a reset may take to bring it back.
BANNER = " booting\n"
REBOOT_TIMEOUT = 30

# What each QMP event says about the guest.
_STATUS_BY_EVENT = {"STOP": "paused", "RESUME": "running", "SHUTDOWN": "shutting down"}


class VmError(Exception):
    pass


class VmStatus(Static):
    """`status` is off, starting, running, paused, shutting down, or how the last run ended."""

    status: reactive[str] = reactive("off")
    config_name: reactive[str] = reactive("")

    class Booted(Message):
        def __init__(self, machine: Machine, elf: Path) -> None:
            super().__init__()
            self.machine, self.elf = machine, elf

    class Serial(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Ended(Message):
        def __init__(self, description: str) -> None:
            super().__init__()
            self.description = description

    def __init__(self, settings: Settings, **kwargs) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.machine: Machine | None = None
        self._image: KernelImage | None = None
        self._dumps = itertools.count(1)

    def render(self) -> str:
        return f"VM [b]{self.status}[/b]  config [b]{self.config_name or '-'}[/b]"

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
        if self.machine is not None:
            raise VmError("a machine is already running: stop it first (ctrl+o)")
        try:
            image = KernelImage(self.settings.kernel_elf)
        except KernelImageError as error:
            raise VmError(str(error)) from None
        self.status = "starting"
        # RAM in a file: the live views read it without stopping the guest.
        machine = Machine(self.settings, config, image, cmdline, on_serial=self._serial, ram_file=True)
        try:
            await machine.start()
        except (QemuError, OSError) as error:
            await machine.shutdown()
            image.close()
            self.status = "off"
            raise VmError(str(error)) from None
        self.machine, self._image = machine, image
        listener = EventListener()
        machine.qmp.register_listener(listener)
        self._follow_events(listener)
        self._wait_exit(machine)
        self.post_message(self.Booted(machine, image.path))
        await machine.resume()

    def _serial(self, text: str) -> None:
        self.post_message(self.Serial(text))

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
        await machine.shutdown()
        if self._image is not None:
            self._image.close()
            self._image = None

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
        """Types `text` on the guest's PS/2 keyboard; returns how many keys it pressed."""
        return await self._machine().send_keys(text)

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
