"""`reverse-continue` for GDB on a replay, done by seeking while the guest is stopped, not by
QEMU's own. Sourced into GDB (`gdb_commands`), whose Python runs it; not imported by the
workbench.

QEMU's reverse-continue (GDB's `bc` packet) searches for the last breakpoint hit by loading
snapshots from a timer while the guest runs, and on a loaded host that deadlocks inside QEMU
(7.2 and 10.0: loading the snapshot, the main thread waits for the vCPU thread, which waits for
the replay lock the main thread holds). A seek that starts with the guest stopped (QMP
`replay-seek`, as reverse-stepi's) does not. So the search is done here: a seek back to the
first instruction, forward through the breakpoints to where the command began, noting the
instruction count of each hit, and a seek to the last of them: two replays from the start, as
QEMU's own search makes.
"""

from __future__ import annotations

import sys
import time

import gdb  # type: ignore[import-not-found]  # GDB's own module: this runs inside GDB

SEEK_SECONDS = 600  # a seek replays from the start: as long as the recording took, at most


class ReverseContinue(gdb.Command):
    """Back to the last breakpoint hit before this instruction, or to the replay's first
    instruction if there is none: replayed forward from the start (QEMU's own reverse-continue
    can deadlock on a loaded host; this one seeks only while the guest is stopped)."""

    def __init__(self, qmp_socket: str):
        super().__init__("reverse-continue", gdb.COMMAND_RUNNING)
        self.qmp_socket = qmp_socket

    def invoke(self, argument: str, from_tty: bool) -> None:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        # Where it went back to, for a caller over GDB/MI (`Gdb.reverse_continue`); -1: it failed.
        gdb.set_convenience_variable("_kwast_reverse_hit", -1)
        with QEMUMonitorProtocol(self.qmp_socket) as qmp:
            qmp.connect()
            here = position(qmp)
            print("Replaying from the first instruction to here, for the breakpoint hits on the way.")
            hits = self.hits_before(qmp, here) if here > 0 else []
            if not hits:
                seek(qmp, 0)
                gdb.set_convenience_variable("_kwast_reverse_hit", 0)
                print("\nNo more reverse-execution history: back at the replay's first instruction.")
                gdb.execute("frame")
                return
            # One instruction short, then a step onto the hit: GDB sees it stop there itself,
            # so it reports the breakpoint and, going on, steps over it (a seek straight to it
            # would leave GDB thinking the guest still where it last saw it stop).
            seek(qmp, hits[-1] - 1)
        gdb.execute("stepi")
        gdb.set_convenience_variable("_kwast_reverse_hit", hits[-1])

    def hits_before(self, qmp, here: int) -> list[int]:
        """The instruction count of each breakpoint hit before `here`, found by replaying from
        the start to `here` (where the guest stops again)."""
        seek(qmp, 0)
        qmp.cmd("replay-break", icount=here)
        stops: list = []
        gdb.events.stop.connect(stops.append)
        hits = []
        # Its stops are the search's, not the user's: where they are is not printed (GDB prints
        # a stop whatever `to_string` says). The last, QEMU's pause at `here`, still says
        # "Program received signal SIGINT": a signal's notice is not a CLI notification.
        quiet = gdb.parameter("suppress-cli-notifications")
        gdb.execute("set suppress-cli-notifications on")
        try:
            while True:
                gdb.execute("continue", to_string=True)  # from a command, GDB waits for the stop
                now = position(qmp)
                if now >= here:
                    return hits
                if stops and isinstance(stops[-1], gdb.BreakpointEvent) and now > 0:
                    hits.append(now)
        finally:
            gdb.execute(f"set suppress-cli-notifications {'on' if quiet else 'off'}")
            gdb.events.stop.disconnect(stops.append)


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
    """`reverse-continue` (and its alias `rc`) for this GDB, speaking QMP on `qmp_socket` (the
    machine's second monitor) with the workbench's qemu.qmp from `site_packages`."""
    if site_packages not in sys.path:
        sys.path.append(site_packages)
    ReverseContinue(qmp_socket)
