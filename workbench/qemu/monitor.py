"""Every QMP command the workbench sends, as verbs on a machine.

`Monitor` holds the verbs over one abstract `command` (a QMP round trip). `Machine` (the QEMU
this process started) and `session.Attached` (a visitor on a named boot's second monitor) both
give `command` and `socket_dir`, a directory QEMU writes files into that we can read.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import itertools
import os
import time
from pathlib import Path
from typing import Iterable, Literal

from qemu.qmp import ExecuteError, QMPClient
from qemu.qmp.protocol import ConnectError

from . import keys as keyboard
from . import screen

# How long each key stays down: short, so typing is quick, and the guest's PS/2 driver still
# sees press and release apart.
KEY_HOLD_MS = 20
# The qcow2 block node that holds savevm/loadvm snapshots (the machine's -blockdev).
SNAPSHOT_NODE = "snapshots"
# Reads this small go through HMP `xp`, which needs no file: about half the time of pmemsave.
SMALL_READ = 8
# How long input waits for a guest that a debugger stopped at a breakpoint to run again.
INPUT_PATIENCE = 10
# Job ids and file names unique in this process.
_numbers = itertools.count(1)

Feature = Literal["display", "keyboard", "snapshots"]


class QemuError(Exception):
    pass


class Monitor(abc.ABC):
    socket_dir: Path | None

    @abc.abstractmethod
    async def command(self, name: str, arguments: dict | None = None, timeout: float = 10) -> object:
        """One QMP command and its answer."""

    def _lacks(self, feature: Feature) -> str | None:
        """Why this machine cannot do `feature`, when it knows its config; else QEMU's refusal
        says so."""
        return None

    def _require(self, feature: Feature) -> None:
        if why := self._lacks(feature):
            raise QemuError(why)

    # --- run state ----------------------------------------------------------------------

    async def status(self, timeout: float = 10) -> str:
        """QEMU's run state: running, paused, debug (stopped by GDB), prelaunch, ..."""
        return (await self.command("query-status", timeout=timeout))["status"]  # type: ignore[index]

    async def running(self) -> bool:
        return await self.status() == "running"

    async def pause(self) -> None:
        await self.command("stop")

    async def resume(self) -> None:
        await self.command("cont")

    @contextlib.asynccontextmanager
    async def paused(self):
        """The guest stopped meanwhile, and resumed after only if it was running before (a guest
        stopped by GDB or the user stays stopped)."""
        running = await self.running()
        if running:
            await self.pause()
        try:
            yield
        finally:
            if running:
                await self.resume()

    async def reset(self) -> None:
        """The reset button. With -no-reboot it ends QEMU unless reboots are allowed."""
        await self.command("system_reset")

    async def power_off(self) -> None:
        """Ends QEMU at once."""
        await self.command("quit")

    async def inject_nmi(self) -> None:
        await self.command("inject-nmi")

    # --- keyboard -----------------------------------------------------------------------

    async def send_keys(self, text: str = "", keys: Iterable[str] = ()) -> int:
        """Types `text` on a US keyboard, then presses each named key (`ret`, `ctrl-c`, `f12`),
        one QMP command per combination; returns how many. KeyNameError for a character the
        keyboard cannot type, before any is sent."""
        self._require("keyboard")
        presses = keyboard.for_text(text) + [keyboard.named(k) for k in keys]
        for combination in presses:
            if self._keys_from_here():
                for down in (True, False):
                    await self._input([{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": k}}}
                                       for k in combination])
                    if down:
                        await asyncio.sleep(KEY_HOLD_MS / 1000)
            else:
                await self.command("send-key", {"keys": [{"type": "qcode", "data": k} for k in combination],
                                                "hold-time": KEY_HOLD_MS})
        return len(presses)

    def _keys_from_here(self) -> bool:
        """Whether key releases are timed here rather than by QEMU's own key queue (its timer
        is outside what a recording logs: recorded, replays of typed keys hung)."""
        return False

    async def tap_key(self, key: str) -> None:
        """Presses and releases `key` in one command, with no hold time: the quickest pair of
        keyboard interrupts QMP can cause."""
        self._require("keyboard")
        await self._input([{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": key}}}
                           for down in (True, False)])

    async def _input(self, events: list[dict]) -> None:
        """input-send-event, which QEMU refuses (and so drops nothing) while the guest is
        stopped. A guest a debugger stopped on a breakpoint (a recording stops at every request
        poll of the kernel until its last write, workbench/replay.py) gets it once it runs on."""
        deadline = time.monotonic() + INPUT_PATIENCE
        while True:
            try:
                await self.command("input-send-event", {"events": events})
                return
            except ExecuteError:  # running again already, or still on the breakpoint: once more
                if await self.status() not in ("debug", "running") or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.001)

    # --- display ------------------------------------------------------------------------

    async def screendump(self, path: Path) -> screen.Picture:
        """The display as a PPM file at `path`, and as read back from it (PPM: QEMU 7.2's PNG
        output has known bugs)."""
        self._require("display")
        await self.command("screendump", {"filename": str(path), "format": "ppm"})
        try:
            return screen.Picture.from_ppm(Path(path).read_bytes())
        except ValueError as error:
            raise QemuError(f"{path}: {error}") from None

    async def screen_text(self) -> screen.TextScreen:
        """The VGA text buffer, as the guest wrote it (read through QEMU: it is device memory,
        not in a RAM file)."""
        return screen.TextScreen(await self.read_memory(screen.TEXT_BUFFER, screen.TEXT_BUFFER_SIZE))

    # --- snapshots ----------------------------------------------------------------------

    async def save_snapshot(self, tag: str) -> None:
        """The whole VM (devices and RAM) into the snapshot disk as `tag`."""
        await self._snapshot_job("snapshot-save", tag)

    async def load_snapshot(self, tag: str) -> None:
        await self._snapshot_job("snapshot-load", tag)

    async def _snapshot_job(self, command: str, tag: str, timeout: float = 30) -> None:
        """Starts a snapshot job and waits for its end; its error, if any, is a QemuError."""
        self._require("snapshots")
        job = f"{command}-{next(_numbers)}"
        await self.command(command, {"job-id": job, "tag": tag, "vmstate": SNAPSHOT_NODE, "devices": [SNAPSHOT_NODE]})
        deadline = time.monotonic() + timeout
        try:
            while True:
                found = next(j for j in await self.command("query-jobs") if j["id"] == job)  # type: ignore[union-attr]
                if found["status"] == "concluded":
                    if found.get("error"):
                        raise QemuError(f"{command} {tag}: {found['error']}")
                    return
                if time.monotonic() > deadline:
                    raise QemuError(f"{command} {tag} did not finish within {timeout:g} s (status {found['status']})")
                await asyncio.sleep(0.01)
        finally:
            with contextlib.suppress(Exception):
                await self.command("job-dismiss", {"id": job})

    # --- record/replay ------------------------------------------------------------------

    async def replay_position(self) -> int:
        """The guest instruction count of a machine recording or replaying (QEMU's icount)."""
        return int((await self.command("query-replay"))["icount"])  # type: ignore[index]

    async def replay_break(self, icount: int) -> None:
        """A replaying machine pauses when it reaches instruction `icount` (one at a time; a
        newer one replaces it; it must lie ahead)."""
        await self.command("replay-break", {"icount": icount})

    async def replay_seek(self, icount: int, timeout: float = 600) -> None:
        """A replaying machine with snapshots goes to instruction `icount` (from the nearest
        snapshot before it, or on from here) and is paused there once this returns. Seek with
        the guest stopped: QEMU's own reverse-continue, which seeks while it runs, deadlocks on
        a loaded host (workbench/gdb_reverse.py). `timeout`: a seek back replays from the start."""
        await self.command("replay-seek", {"icount": icount})
        deadline = time.monotonic() + timeout
        while await self.running() or await self.replay_position() != icount:
            if time.monotonic() > deadline:
                raise QemuError(f"the replay did not get to instruction {icount} in {timeout:g} s")
            await asyncio.sleep(0.02)

    # --- memory -------------------------------------------------------------------------

    async def read_memory(self, address: int, size: int) -> bytes:
        """`size` bytes of guest physical memory (device memory included) at `address`."""
        if size <= SMALL_READ:
            # HMP answers "ADDRESS: 0x12 0x34 ...\r\n" for `xp /Nbx`.
            text = await self.command("human-monitor-command", {"command-line": f"xp /{size}bx {address:#x}"})
            _, _, values = str(text).partition(":")
            data = bytes(int(value, 16) for value in values.split())
        else:
            assert self.socket_dir is not None
            path = self.socket_dir / f"memory-{os.getpid()}-{next(_numbers)}.bin"
            await self.command("pmemsave", {"val": address, "size": size, "filename": str(path)})
            data = path.read_bytes()
            path.unlink()
        if len(data) != size:
            raise QemuError(f"QEMU gave {len(data)} bytes for {size} at {address:#x}")
        return data

    async def read_memory_in_order(self, reads: list[tuple[int, int]]) -> list[bytes]:
        """`read_memory` of each (address, size), one after the other in the guest's time: QEMU
        runs a monitor's commands in the order they arrive, each to its end, so they are sent
        together and the round trips between them are saved."""
        return list(await asyncio.gather(*(self.read_memory(address, size) for address, size in reads)))


class Visitor(Monitor):
    """The verbs on a QEMU another process started, through its second monitor (`Machine`'s
    `attach_socket`): for `session.Attached` and the reverse-continue a replay's GDB runs
    (workbench/gdb_reverse.py). `async with` connects, and disconnects."""

    def __init__(self, socket: Path, socket_dir: Path | None = None):
        self.socket, self.socket_dir = Path(socket), socket_dir
        self.qmp = QMPClient("kwast-bench-visitor")

    async def __aenter__(self) -> Visitor:
        deadline = time.monotonic() + 5  # a QEMU just started may not listen yet
        while True:
            try:
                await self.qmp.connect(str(self.socket))
                return self
            except (ConnectionError, OSError, ConnectError) as error:  # qemu.qmp's ConnectError is no OSError
                if time.monotonic() > deadline:
                    raise QemuError(f"cannot connect to QEMU's monitor at {self.socket}: {error}") from None
                await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        await self.qmp.disconnect()

    async def command(self, name: str, arguments: dict | None = None, timeout: float = 10) -> object:
        return await asyncio.wait_for(self.qmp.execute(name, arguments), timeout)
