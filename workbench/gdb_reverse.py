"""Going back on a replay by seeking while the guest is stopped, not by QEMU's reverse-continue:
`reverse-continue` and `reverse-finish` for GDB. Sourced into GDB (`replay.gdb_commands`),
whose Python runs it; not imported by the workbench.

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

import sys
import time

import gdb  # type: ignore[import-not-found]  # GDB's own module: this runs inside GDB

SEEK_SECONDS = 600  # a seek replays from the start: as long as the recording took, at most
# Where the last command went back to, for a caller over GDB/MI (`Gdb.reverse_continue`): the
# instruction count, 0 for the replay's first instruction, -1 if it failed.
RESULT = "_kwast_reverse_hit"


class Search:
    """The breakpoint hits before where the guest is, and going back to one of them."""

    def __init__(self, qmp_socket: str):
        self.qmp_socket = qmp_socket

    def back(self, landing) -> None:
        """Back to the last breakpoint hit before here, or to the first instruction if there is
        none; `landing(breakpoints)` says how many instructions before the hit to stop, given
        the breakpoints hit there."""
        from qemu.qmp.legacy import QEMUMonitorProtocol

        gdb.set_convenience_variable(RESULT, -1)
        with QEMUMonitorProtocol(self.qmp_socket) as qmp:
            qmp.connect()
            here = position(qmp)
            print("Replaying from the first instruction to here, for the breakpoint hits on the way.")
            hits = self.hits_before(qmp, here) if here > 0 else []
            target = hits[-1][0] - landing(hits[-1][1]) if hits else 0
            if target < 1:
                seek(qmp, 0)
                gdb.set_convenience_variable(RESULT, 0)
                print("\nNo more reverse-execution history: back at the replay's first instruction.")
                gdb.execute("frame")
                return
            # One instruction short, then a step onto it: GDB sees the guest stop there itself,
            # so it reports where (a breakpoint, if one is there) and, going on, steps over a
            # breakpoint there. Seeking straight to it would leave GDB thinking the guest still
            # where it last saw it stop.
            seek(qmp, target - 1)
        gdb.execute("stepi")
        gdb.set_convenience_variable(RESULT, target)

    def hits_before(self, qmp, here: int) -> list[tuple[int, list]]:
        """(instruction count, breakpoints hit) of each breakpoint hit before `here`, found by
        replaying from the start to `here` (QMP `replay-break`: the guest stops there again)."""
        seek(qmp, 0)
        qmp.cmd("replay-break", icount=here)
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
                now = position(qmp)
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


def position(qmp) -> int:
    return int(qmp.cmd("query-replay")["icount"])


def seek(qmp, icount: int) -> None:
    """The guest at instruction `icount`, stopped, and GDB's idea of its registers dropped."""
    qmp.cmd("replay-seek", icount=icount)
    deadline = time.monotonic() + SEEK_SECONDS
    while qmp.cmd("query-status")["running"] or position(qmp) != icount:
        if time.monotonic() > deadline:
            raise gdb.GdbError(f"the replay did not get to instruction {icount} in {SEEK_SECONDS} s")
        time.sleep(0.02)
    gdb.execute("maint flush register-cache", to_string=True)


def install(qmp_socket: str, site_packages: str) -> None:
    """`reverse-continue` (alias `rc`) and `reverse-finish` for this GDB, speaking QMP on
    `qmp_socket` (the machine's second monitor) with the workbench's qemu.qmp from
    `site_packages`; reverse-step, reverse-next and reverse-nexti refused, with why."""
    if site_packages not in sys.path:
        sys.path.append(site_packages)
    search = Search(qmp_socket)
    ReverseContinue(search)
    ReverseFinish(search)
    for name in ("reverse-step", "reverse-next", "reverse-nexti"):
        Refused(name)
