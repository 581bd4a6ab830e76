"""Going back on a replay by seeking while the guest is stopped, not by QEMU's reverse-continue:
`reverse-continue` and `reverse-finish` for GDB. Imported by GDB's Python (`replay.gdb_commands`),
not by the workbench's.

QEMU's reverse-continue (GDB's `bc` packet, which GDB's reverse-finish, reverse-step and
reverse-next use too) searches for the last breakpoint hit by loading snapshots from a timer
while the guest runs, and on a loaded host that deadlocks inside QEMU (7.2 and 10.0: loading
the snapshot, the main thread waits for the vCPU thread, which waits for the replay lock the
main thread holds). A seek that starts with the guest stopped (QMP `replay-seek`, as
reverse-stepi's `bs`) does not. So the search is done here: a seek back to the first
instruction, forward through the breakpoints to where the command began, noting the
instruction count of each hit, and a seek to the last of them: two replays from the start, as
QEMU's own search makes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import gdb  # type: ignore[import-not-found]  # GDB's own module: this runs inside GDB

from .gdb import REVERSE_RESULT as RESULT  # read back over GDB/MI by `Gdb.reverse_continue`
from .qemu.monitor import QemuError, Visitor


class Search:
    """The breakpoint hits before where the guest is, and going back to one of them, through the
    machine's second monitor."""

    def __init__(self, qmp_socket: str):
        self.qmp_socket = qmp_socket

    def back(self, landing) -> None:
        """Back to the last breakpoint hit before here, or to the first instruction if there is
        none; `landing(breakpoints)` says how many instructions before the hit to stop, given
        the breakpoints hit there."""
        gdb.set_convenience_variable(RESULT, -1)
        # The search's QMP verbs run on this loop; GDB's `continue`s block it meanwhile, with
        # nothing else on it to wait.
        loop = asyncio.new_event_loop()
        try:
            target = loop.run_until_complete(self._back(landing))
        except QemuError as error:
            raise gdb.GdbError(str(error)) from None
        finally:
            loop.close()
        if target == 0:
            gdb.set_convenience_variable(RESULT, 0)
            print("\nNo more reverse-execution history: back at the replay's first instruction.")
            gdb.execute("frame")
            return
        gdb.execute("stepi")
        gdb.set_convenience_variable(RESULT, target)

    async def _back(self, landing) -> int:
        """Seeks to where `back` goes: the first instruction (returns 0), or one short of the
        target (returns the target)."""
        async with Visitor(Path(self.qmp_socket)) as machine:
            here = await machine.replay_position()
            print("Replaying from the first instruction to here, for the breakpoint hits on the way.")
            hits = await self.hits_before(machine, here) if here > 0 else []
            target = hits[-1][0] - landing(hits[-1][1]) if hits else 0
            if target < 1:
                await seek(machine, 0)
                return 0
            # One instruction short, then a step onto it: GDB sees the guest stop there itself,
            # so it reports where (a breakpoint, if one is there) and, going on, steps over a
            # breakpoint there. Seeking straight to it would leave GDB thinking the guest still
            # where it last saw it stop.
            await seek(machine, target - 1)
            return target

    async def hits_before(self, machine, here: int) -> list[tuple[int, list]]:
        """(instruction count, breakpoints hit) of each breakpoint hit before `here`, found by
        replaying from the start to `here` (QMP `replay-break`: the guest stops there again)."""
        await seek(machine, 0)
        await machine.replay_break(here)
        stops: list = []
        gdb.events.stop.connect(stops.append)
        hits = []
        # The search's stops are not the user's: where they are is not printed (GDB prints a
        # stop whatever `to_string` says). The last, QEMU's pause at `here`, still says
        # "Program received signal SIGINT": a signal's notice is not a CLI notification.
        quiet = gdb.parameter("suppress-cli-notifications")
        gdb.execute("set suppress-cli-notifications on")
        try:
            while True:
                gdb.execute("continue", to_string=True)  # from a command, GDB waits for the stop
                now = await machine.replay_position()
                if now >= here:
                    return hits
                if stops and isinstance(stops[-1], gdb.BreakpointEvent):
                    hits.append((now, stops[-1].breakpoints))
        finally:
            gdb.execute(f"set suppress-cli-notifications {'on' if quiet else 'off'}")
            gdb.events.stop.disconnect(stops.append)


class ReverseContinue(gdb.Command):
    """Back to the last breakpoint hit before this instruction, or to the replay's first
    instruction if there is none (the workbench's: QEMU's own can deadlock on a loaded host)."""

    def __init__(self, search: Search):
        super().__init__("reverse-continue", gdb.COMMAND_RUNNING)
        self.search = search

    def invoke(self, argument: str, from_tty: bool) -> None:
        self.search.back(lambda breakpoints: 0)


class ReverseFinish(gdb.Command):
    """Back to the call of the selected frame's function: the call before its last entry before
    here, unless a breakpoint is hit on the way back, where it stops (the workbench's: GDB's
    own is QEMU's reverse-continue, which can deadlock on a loaded host)."""

    def __init__(self, search: Search):
        super().__init__("reverse-finish", gdb.COMMAND_RUNNING)
        self.search = search

    def invoke(self, argument: str, from_tty: bool) -> None:
        frame = gdb.selected_frame()
        while frame.type() == gdb.INLINE_FRAME:  # code inlined into the function: its call is the caller's
            frame = frame.older()
        if frame.function() is None or frame.older() is None:
            raise gdb.GdbError('"reverse-finish" not meaningful in the outermost frame or one without symbols.')
        entry = gdb.Breakpoint(f"*{int(frame.function().value().address):#x}", internal=True)
        try:
            # The call is the instruction before the entry.
            self.search.back(lambda breakpoints: 1 if entry.number in [b.number for b in breakpoints] else 0)
        finally:
            entry.delete()


class Refused(gdb.Command):
    """Not offered on a replay here: GDB makes these of single instructions back, each a replay
    from the start (one took over 5 minutes), and over a call of QEMU's reverse-continue."""

    def __init__(self, name: str):
        super().__init__(name, gdb.COMMAND_RUNNING)
        self.name = name

    def invoke(self, argument: str, from_tty: bool) -> None:
        raise gdb.GdbError(f"{self.name} is not offered on a replay: GDB makes it of one replay from the "
                           "start per instruction, and of QEMU's reverse-continue, which deadlocks on a loaded "
                           "host. Use reverse-stepi [N], reverse-finish, or a breakpoint and reverse-continue.")


async def seek(machine, icount: int) -> None:
    """The guest at instruction `icount`, stopped, and GDB's idea of its registers dropped."""
    await machine.replay_seek(icount)
    gdb.execute("maint flush register-cache", to_string=True)


def install(qmp_socket: str) -> None:
    """`reverse-continue` (alias `rc`) and `reverse-finish` for this GDB, through the machine's
    second monitor at `qmp_socket`; reverse-step, reverse-next and reverse-nexti refused, with why."""
    search = Search(qmp_socket)
    ReverseContinue(search)
    ReverseFinish(search)
    for name in ("reverse-step", "reverse-next", "reverse-nexti"):
        Refused(name)
