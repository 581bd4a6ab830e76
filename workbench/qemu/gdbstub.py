"""QEMU's gdbstub spoken to directly (GDB's remote serial protocol), without GDB: for a
breakpoint kept in a guest that runs, which GDB cannot do (it stops the guest to change
breakpoints, and stepping over one is its own doing).

QEMU stops a running guest when any byte reaches its gdbstub, so a `Stub` sends only while the
guest is stopped: connected while QEMU holds the guest at reset (connecting stops the guest),
and after a stop reply. It sends no acks: QEMU 7.2 has no no-ack mode, but waits for none
either (a packet of ours ends the wait).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .monitor import QemuError


def _framed(payload: str) -> bytes:
    return f"${payload}#{sum(payload.encode()) % 256:02x}".encode()


class Stub:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader, self._writer = reader, writer

    @classmethod
    async def connect(cls, path: Path) -> Stub:
        reader, writer = await asyncio.open_unix_connection(str(path))
        return cls(reader, writer)

    async def packet(self) -> str:
        """The next packet's payload (acks before it skipped); a QemuError when QEMU has ended."""
        try:
            await self._reader.readuntil(b"$")
            body = await self._reader.readuntil(b"#")
            await self._reader.readexactly(2)
        except (asyncio.IncompleteReadError, ConnectionError):
            raise QemuError("QEMU closed its gdbstub") from None
        return body[:-1].decode()

    async def send(self, payload: str) -> None:
        self._writer.write(_framed(payload))
        await self._writer.drain()

    async def command(self, payload: str, expect: str | None = None) -> str:
        await self.send(payload)
        reply = await self.packet()
        if expect is not None and reply != expect:
            raise QemuError(f"gdbstub: {payload.split(':')[0]} answered {reply!r}, expected {expect!r}")
        return reply

    async def stopped(self) -> str:
        """After `c` or `s`: the stop reply (`T05...` at a breakpoint or step, `T02...` when
        QMP or the user paused the guest)."""
        while True:
            reply = await self.packet()
            if reply[:1] in ("T", "S", "W", "X"):
                return reply

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


def at_breakpoint(reply: str) -> bool:
    """A stop reply for a breakpoint or a step (SIGTRAP), not a pause."""
    return reply.startswith(("T05", "S05"))
