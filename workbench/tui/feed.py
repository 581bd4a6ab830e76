"""The live feed of kernel state: the debug-state block read several times a second from the
machine's RAM file, so the guest never pauses for it. Posts `Updated` with each read
(`KernelState`) and `Waiting` while there is none to show (the kernel has not published it yet)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget

from ..state import DebugStateError, MmapMemory, KernelState, StateReader


class StateFeed(Widget):
    """Invisible: it only keeps time."""

    INTERVAL = 0.25

    class Updated(Message):
        def __init__(self, kernel: KernelState) -> None:
            super().__init__()
            self.kernel = kernel

    class Waiting(Message):
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._reader: StateReader | None = None
        self._memory: MmapMemory | None = None
        self._timer: Timer | None = None

    async def follow(self, elf: Path, ram: Path) -> None:
        self.stop()
        # Reading the layout from DWARF takes a moment: not on the UI's loop.
        self._reader = await asyncio.to_thread(StateReader, elf)
        self._memory = MmapMemory(ram)
        self._timer = self.set_interval(self.INTERVAL, self._poll)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    async def _poll(self) -> None:
        if self._reader is None or self._memory is None:
            return
        try:
            kernel = await self._reader.read(self._memory)
        except DebugStateError as error:
            self.post_message(self.Waiting(str(error)))
            return
        if kernel.cpu_count == 0:
            self.post_message(self.Waiting("the kernel has not published its state yet"))
        else:
            self.post_message(self.Updated(kernel))

    def on_unmount(self) -> None:
        self.stop()
