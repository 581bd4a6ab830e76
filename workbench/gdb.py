"""GDB on QEMU's gdbstub, driven over GDB/MI with pygdbmi, fast.

pygdbmi's `write()` waits 0.2 s for more output after every answer. Here each command carries
a numeric token, and we wait on GDB's stdout with select() until the `result` record with
that token arrives (about a millisecond). Everything else that arrives meanwhile (`*stopped`,
`=breakpoint-modified`, console text) is kept in `events` for the caller.

`with Gdb(elf, socket) as gdb:` ends GDB on every path: `-gdb-exit`, then SIGKILL if it lingers.
"""

from __future__ import annotations

import collections
import itertools
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Sequence

from pygdbmi.gdbcontroller import GdbController

GDB = "gdb"


class GdbError(Exception):
    pass


class TargetGone(GdbError):
    """The target went away (QEMU ended) while GDB waited for it to stop."""


# How long one MI command may take. Milliseconds as a rule; but attaching stops every vCPU,
# and on a host starved by other work (two busy loops beside the two test workers on two
# cores) a kill's attach and write to a 4-CPU guest took over 10 s, the guest otherwise fine.
# Only a stuck GDB or QEMU waits this long.
COMMAND_TIMEOUT = 30
# The workbench's reverse-continue replays from the first instruction twice: as long as the
# recording took, twice (seconds for a scenario's, on a loaded host).
REVERSE_CONTINUE_TIMEOUT = 600
# The GDB convenience variable where the workbench's reverse-continue and reverse-finish
# (gdb_reverse.py) leave the instruction count they went back to: 0 the first, -1 failed.
REVERSE_RESULT = "_kwast_reverse_hit"


class Gdb:
    def __init__(self, elf: Path | str, socket: Path | str, timeout: float = COMMAND_TIMEOUT, setup: Sequence[str] = ()):
        """`setup`: GDB commands run once attached (`replay.gdb_commands`, say)."""
        self.elf, self.socket, self.timeout, self.setup = Path(elf), Path(socket), timeout, list(setup)
        self.events: collections.deque[dict] = collections.deque(maxlen=10_000)
        self._token = 0
        self._controller: GdbController | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> Gdb:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        try:
            self._controller = GdbController(
                command=[GDB, "--nx", "--quiet", "--interpreter=mi3", str(self.elf)],
                time_to_check_for_additional_output_sec=0)
        except ValueError:
            raise GdbError(f"{GDB} is not installed (run `make setup`)") from None
        self.command("-gdb-set pagination off")
        self.command("-gdb-set confirm off")
        self.command("-gdb-set mi-async on")  # `-exec-interrupt` works while the target runs
        if not self.socket.exists():
            raise GdbError(f"no gdbstub socket at {self.socket}: is that QEMU session still running?")
        self.command(f"-target-select remote {self.socket}")
        for command in self.setup:
            self.command(f"-interpreter-exec console {_quote(command)}")

    @property
    def pid(self) -> int | None:
        process = self._controller.gdb_process if self._controller else None
        return process.pid if process else None

    def close(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None or controller.gdb_process is None:
            return
        process = controller.gdb_process
        try:
            if process.poll() is None:
                # Detach first so QEMU's guest goes on as it was; then leave.
                token = self._send(controller, "-target-detach")
                self._wait_result(controller, token, 1, check=False)
                self._send(controller, "-gdb-exit")
                process.wait(timeout=1)
        except (GdbError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream:
                    stream.close()

    # --- MI commands --------------------------------------------------------------------

    def _send(self, controller: GdbController, mi: str) -> int:
        self._token += 1
        controller.write(f"{self._token}{mi}", read_response=False)
        return self._token

    def _wait_result(self, controller: GdbController, token: int, timeout: float, check: bool = True) -> dict:
        process = controller.gdb_process
        streams = [process.stdout, process.stderr]
        deadline = time.monotonic() + timeout
        while True:
            result = None
            # Keep every other record of the batch, also those after the result (a quick
            # `*stopped` can arrive in the same read as `^running`).
            for record in controller.get_gdb_response(timeout_sec=0, raise_error_on_timeout=False):
                if record.get("type") == "result" and record.get("token") == token:
                    result = record
                else:
                    self.events.append(record)
            if result is not None:
                if check and result["message"] == "error":
                    raise GdbError((result.get("payload") or {}).get("msg", "GDB error"))
                return result
            if process.poll() is not None:
                raise GdbError(f"GDB exited (status {process.returncode})")
            left = deadline - time.monotonic()
            if left <= 0:
                raise GdbError(f"GDB did not answer within {timeout} s")
            select.select(streams, [], [], left)

    def command(self, mi: str, timeout: float | None = None) -> dict:
        """One MI command; returns its result record's payload (`{}` if none)."""
        return self.record(mi, timeout).get("payload") or {}

    def record(self, mi: str, timeout: float | None = None) -> dict:
        """One MI command; returns its whole result record (`message` is done, running, ...)."""
        if self._controller is None:
            raise GdbError("GDB is not running")
        token = self._send(self._controller, mi)
        return self._wait_result(self._controller, token, timeout or self.timeout)

    def console(self, cli: str, stop_timeout: float | None = None) -> str:
        """A GDB CLI command (as typed at the (gdb) prompt); returns what it printed. A command
        that resumes the target (continue, step) returns once it has stopped again; the
        workbench's reverse-continue and reverse-finish, which stop several times, once over."""
        before = len(self.events)
        if cli.split()[:1] in (["reverse-continue"], ["rc"], ["reverse-finish"]):
            self._search_back(cli, stop_timeout)
            # What it printed once its search was over: the search's stops printed (MI's
            # console prints every stop), the last of them QEMU's pause where it began.
            pauses = [i for i, payload in self._stops(before) if payload.get("signal-name") == "SIGINT"]
            before = pauses[-1] + 1 if pauses else before
        elif self.record(f"-interpreter-exec console {_quote(cli)}")["message"] == "running":
            self.wait_stopped(stop_timeout, after=before)
        return self._printed(before, ("console", "output", "target"))

    def reverse_continue(self, timeout: float | None = None) -> dict:
        """Back to the last breakpoint hit, by the workbench's `reverse-continue` (a replay's GDB
        has it: `replay.gdb_commands`); returns the stop's payload, reason `no-history` if it
        went back to the replay's first instruction. That command first runs the guest forward
        from the start, so the first stops are not the one: the wait is for the command's end
        (GDB answers a command after it only then), and the stop is the last one before."""
        before = len(self.events)
        if self._search_back("reverse-continue", timeout) == 0:
            return {"reason": "no-history", "frame": self.command("-stack-info-frame")["frame"]}
        return self._stops(before)[-1][1]

    def _search_back(self, cli: str, timeout: float | None) -> int:
        """Runs the workbench's reverse-continue or reverse-finish (`cli`) to its end; returns the
        instruction count it went back to (0: the first)."""
        before = len(self.events)
        timeout = timeout or REVERSE_CONTINUE_TIMEOUT
        self.record(f"-interpreter-exec console {_quote(cli)}", timeout)
        hit = self.command(f"-data-evaluate-expression ${REVERSE_RESULT}", timeout)["value"]
        if not hit.isdigit():  # -1: it failed part way, and said why; void: it is not there
            said = self._printed(before, ("console", "log")).strip()
            raise GdbError(f"{cli} failed: {said or 'not the workbench one (replay.gdb_commands)'}")
        return int(hit)

    def _printed(self, since: int, streams: tuple[str, ...]) -> str:
        """The text GDB wrote on `streams` from event index `since` on."""
        return "".join(e["payload"] for e in list(self.events)[since:]
                       if e.get("type") in streams and isinstance(e.get("payload"), str))

    def _stops(self, since: int) -> list[tuple[int, dict]]:
        """(event index, payload) of each `*stopped` record from event index `since` on."""
        return [(i, e.get("payload") or {}) for i, e in enumerate(list(self.events)[since:], since)
                if e.get("type") == "notify" and e.get("message") == "stopped"]

    # --- execution ----------------------------------------------------------------------

    def break_at(self, location: str) -> int:
        """A breakpoint at a symbol (`kmain`) or `file:line`; returns its number."""
        return int(self.command(f"-break-insert {_quote(location)}")["bkpt"]["number"])

    def cont(self) -> None:
        self.command("-exec-continue")

    def step(self) -> dict:
        return self._run_until_stopped("-exec-step")

    def next(self) -> dict:
        return self._run_until_stopped("-exec-next")

    def finish(self) -> dict:
        return self._run_until_stopped("-exec-finish")

    def interrupt(self) -> dict:
        return self._run_until_stopped("-exec-interrupt")

    def _run_until_stopped(self, mi: str) -> dict:
        mark = len(self.events)
        self.command(mi)
        return self.wait_stopped(after=mark)

    def wait_stopped(self, timeout: float | None = None, after: int = 0) -> dict:
        """The payload of the first `*stopped` record at or after event index `after`."""
        if self._controller is None:
            raise GdbError("GDB is not running")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for record in list(self.events)[after:]:
                if record.get("type") == "notify" and record.get("message") == "stopped":
                    return record.get("payload") or {}
                if record.get("type") == "notify" and record.get("message") == "thread-group-exited":
                    raise TargetGone("the target is gone (QEMU ended): it will not stop")
            after = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                raise GdbError(f"the target did not stop within {timeout or self.timeout} s")
            process = self._controller.gdb_process
            select.select([process.stdout, process.stderr], [], [], left)
            self.events.extend(self._controller.get_gdb_response(timeout_sec=0, raise_error_on_timeout=False))

    # --- inspection ---------------------------------------------------------------------

    def registers(self) -> dict[str, int]:
        names = self.command("-data-list-register-names")["register-names"]
        values = self.command("-data-list-register-values x")["register-values"]
        out = {}
        for value in values:
            name = names[int(value["number"])]
            if name and re.fullmatch(r"0x[0-9a-f]+", value["value"]):
                out[name] = int(value["value"], 16)
        return out

    def backtrace(self) -> list[dict]:
        """Frames innermost first: level, func, addr, and file/line where known."""
        return self.command("-stack-list-frames")["stack"]

    def select_frame(self, level: int) -> None:
        """Makes frame `level` of `backtrace()` the one `evaluate` sees (its locals and arguments)."""
        self.command(f"-stack-select-frame {level}")

    def read_memory(self, address: int, size: int) -> bytes:
        blocks = self.command(f"-data-read-memory-bytes {address:#x} {size}")["memory"]
        return b"".join(bytes.fromhex(block["contents"]) for block in blocks)

    def write_memory(self, address: int, data: bytes) -> None:
        self.command(f"-data-write-memory-bytes {address:#x} {data.hex()}")

    def evaluate(self, expression: str) -> str:
        """A C/Rust expression's value as GDB prints it; assignments work too."""
        return self.command(f"-data-evaluate-expression {_quote(expression)}")["value"]


def frame_stopped_in(frames: list[dict], stopped: dict, matches) -> dict | None:
    """Among the frames at a stop's address, innermost first, the first whose function
    `matches(func)`. When code inlined into a function runs, GDB names the inlined function as
    frame 0; the function around it is a frame further up at the same address. `frames` is
    `backtrace()`; `stopped` the stop record's frame (used alone when the backtrace is empty)."""
    here = list(itertools.takewhile(lambda f: f.get("addr") == stopped.get("addr"), frames)) or [stopped]
    return next((f for f in here if matches(f.get("func", ""))), None)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
