"""The debugger pane: GDB (workbench.gdb) on the machine's gdbstub, driven from thread workers
because pygdbmi blocks. One lock serialises GDB commands; a continue waits for the stop in
short slices, releasing the lock between them, so an interrupt can get in. On a replay with
snapshots GDB also goes backwards (reverse-stepi, reverse-continue); its run keys are the app's,
so they work from the console pane too."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label, Static

from ..gdb import Gdb, GdbError, TargetGone, frame_stopped_in

SOURCE_CONTEXT = 6  # lines shown each side of the stop
REGISTERS = ["rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "eflags", "cs", "ss"]
_WAIT_SLICE = 0.2  # seconds a waiting continue holds GDB before letting other commands in


# What each way of running does, as a GDB/MI command; reverse-continue is the workbench's own
# (`Gdb.reverse_continue`): QEMU's deadlocks on a loaded host.
RUNS = {"continue": "-exec-continue", "step": "-exec-step", "next": "-exec-next", "finish": "-exec-finish",
        "reverse-stepi": "-exec-step-instruction --reverse"}
BACKWARDS = ("reverse-stepi", "reverse-continue")


class DebuggerPane(Vertical):
    HELP = """\
## Debugger
GDB attached to QEMU's gdbstub (attaching stops the guest).

- **ctrl+g** attaches, or detaches (the guest goes on as it was)
- breakpoint: type `kmain` or `main.rs:40` in the box, **enter**
- **F5** continue, **F6** interrupt, **F7** step, **F8** next, **F9** finish
- on a replay (opened in the Scenarios pane): **shift+F7** one instruction back (reverse-stepi),
  **shift+F5** back to the previous breakpoint hit (reverse-continue; it cannot be interrupted).
  Each replays from the first instruction, so the console is written again from its start. A
  replay keeps GDB attached.
"""

    class AttachChanged(Message):
        """GDB attached or detached: the keys that need it come and go."""

    class RunEnded(Message):
        """A run (`run`) is over: `stopped`, the guest stopped somewhere (shown); else it failed."""

        def __init__(self, stopped: bool) -> None:
            super().__init__()
            self.stopped = stopped

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._target: tuple[Path, Path] | None = None  # (kernel ELF, gdbstub socket)
        self._setup: list[str] = []  # GDB commands to run once attached
        self._gdb: Gdb | None = None
        self._lock = threading.Lock()
        self._waiting = threading.Event()  # set while a continue waits for the stop
        self._no_reverse: str | None = None  # why GDB cannot go backwards here; None: it can
        self._replay = False
        self.breakpoints: dict[int, str] = {}
        self.stops_shown = 0  # stops shown since the app started: each stop shows, even a same one

    @property
    def attached(self) -> bool:
        return self._gdb is not None

    def focus_location(self) -> None:
        self.query_one("#breakpoint", Input).focus()

    def compose(self) -> ComposeResult:
        yield Static("no machine: boot one (F2), then attach (ctrl+g)", id="gdb-status")
        yield Input(placeholder="breakpoint: symbol or file:line, enter sets it", id="breakpoint")
        yield Label("", id="breakpoints")
        with Horizontal(id="gdb-views"):
            yield Static("", id="source")
            with Vertical(id="gdb-side"):
                backtrace = DataTable(id="backtrace", cursor_type="row")
                backtrace.add_columns("#", "function", "where")
                yield backtrace
                registers = DataTable(id="registers", cursor_type="none")
                registers.add_columns("register", "value")
                yield registers

    # --- target -------------------------------------------------------------------------

    def set_target(self, elf: Path, socket: Path, no_reverse: str | None, replay: bool = False,
                   setup: list[str] | None = None) -> None:
        """The machine GDB attaches to; `no_reverse` says why it cannot go backwards (None: it
        can); `setup`: GDB commands to run once attached."""
        self._target, self._no_reverse, self._replay, self._setup = (elf, socket), no_reverse, replay, setup or []
        self._status("replay held at its first instruction: attaching..." if replay else "machine up: attach GDB with ctrl+g")

    def machine_ended(self) -> None:
        self._target = None
        self._replay = False
        self.breakpoints.clear()
        self.query_one("#breakpoints", Label).update("")
        self._stop_gdb()

    def _status(self, text: str) -> None:
        self.query_one("#gdb-status", Static).update(text)

    # --- actions ------------------------------------------------------------------------

    def toggle_attach(self) -> None:
        if self._gdb is not None and self._replay:
            # Detached and attached again, QEMU would snapshot there, and going back would
            # start from it: the console could no longer be written again from the start.
            self.notify("a replay keeps GDB attached: ctrl+o ends the replay", severity="warning")
        elif self._gdb is not None:
            self._stop_gdb()
        elif self._target is None:
            self.notify("no machine is running: boot one first (F2)", severity="warning")
        else:
            self._status("attaching...")
            self._start_gdb(*self._target)

    def ready(self, how: str) -> bool:
        """Whether `run(how)` would start; if not, says why."""
        if not self._needs_gdb():
            return False
        if self._waiting.is_set():
            self.notify("the guest is running: interrupt it first (F6)", severity="warning")
            return False
        if how in BACKWARDS and self._no_reverse is not None:
            self.notify(f"cannot go back: {self._no_reverse}", severity="warning", timeout=15)
            return False
        return True

    def run(self, how: str) -> None:
        """One of RUNS; the pane shows the stop when it comes."""
        if self.ready(how):
            self._status(f"{how}...")
            self._resume(how)

    def interrupt(self) -> None:
        if self._needs_gdb():
            self._interrupt()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        location = event.value.strip()
        if location and self._needs_gdb():
            self._break(location)

    def _needs_gdb(self) -> bool:
        if self._gdb is None:
            self.notify("GDB is not attached: attach with ctrl+g", severity="warning")
            return False
        return True

    # --- GDB, in thread workers -----------------------------------------------------------

    @work(thread=True, group="gdb")
    def _start_gdb(self, elf: Path, socket: Path) -> None:
        gdb = Gdb(elf, socket, setup=self._setup)
        try:
            with self._lock:
                gdb.start()
                frame = gdb.command("-stack-info-frame").get("frame", {})
            self._gdb = gdb
            self.app.call_from_thread(self.post_message, self.AttachChanged())
        except GdbError as error:
            gdb.close()
            self.app.call_from_thread(self._status, f"attach failed: {error}")
            return
        self._after_stop({"reason": "attached", "frame": frame})

    def _stop_gdb(self) -> None:
        gdb, self._gdb = self._gdb, None
        self._waiting.clear()
        if gdb is not None:
            self.post_message(self.AttachChanged())
            self._close(gdb)

    @work(thread=True, group="gdb-close")
    def _close(self, gdb: Gdb) -> None:
        with self._lock:
            gdb.close()
        self.app.call_from_thread(self._status, "detached" if self._target else "no machine: boot one (F2)")

    def close_now(self) -> None:
        """Ends GDB before the app leaves (blocks briefly: waits out a continue's slice)."""
        gdb, self._gdb = self._gdb, None
        self._waiting.clear()
        if gdb is not None:
            with self._lock:
                gdb.close()

    @work(thread=True, group="gdb")
    def _break(self, location: str) -> None:
        gdb = self._gdb
        try:
            with self._lock:
                number = gdb.break_at(location)
        except GdbError as error:
            self.app.call_from_thread(self._status, f"breakpoint {location}: {error} (try a symbol like kmain or file:line like main.rs:40)")
            return
        self.breakpoints[number] = location
        listing = "  ".join(f"#{n} {where}" for n, where in self.breakpoints.items())
        self.app.call_from_thread(self.query_one("#breakpoints", Label).update, f"breakpoints: {listing}")
        # Set, it is listed beside the box: the box is empty for the next (a refused one stays, to be mended).
        self.app.call_from_thread(self.query_one("#breakpoint", Input).clear)
        self.app.call_from_thread(self._status, f"breakpoint {number} at {location}")

    @work(thread=True, group="gdb")
    def _resume(self, how: str) -> None:
        gdb = self._gdb
        try:
            if how == "reverse-continue":
                self._go_back(gdb)
                return
            with self._lock:
                mark = len(gdb.events)
                gdb.command(RUNS[how])
                self._waiting.set()
            doing = "replaying from the first instruction" if how in BACKWARDS else "running"
            self.app.call_from_thread(self._status, f"{how}: {doing} (F6 interrupts)")
            while self._waiting.is_set():
                with self._lock:
                    if not self._waiting.is_set():
                        return
                    try:
                        payload = gdb.wait_stopped(timeout=_WAIT_SLICE, after=mark)
                    except TargetGone:
                        raise
                    except GdbError:
                        continue  # not stopped yet
                self._waiting.clear()
                self._after_stop(payload)
        except GdbError as error:
            self._waiting.clear()
            self.app.call_from_thread(self._status, f"{how} failed: {error}")
            self.app.call_from_thread(self.post_message, self.RunEnded(False))

    def _go_back(self, gdb: Gdb) -> None:
        """reverse-continue, the workbench's: one GDB command that returns at its stop, after
        replaying from the first instruction twice (so no interrupt gets in)."""
        self.app.call_from_thread(self._status, "reverse-continue: replaying from the first instruction")
        with self._lock:
            payload = gdb.reverse_continue()
        self._after_stop(payload)

    @work(thread=True, group="gdb")
    def _interrupt(self) -> None:
        with self._lock:
            try:
                self._gdb.command("-exec-interrupt")
            except GdbError as error:
                self.app.call_from_thread(self._status, f"interrupt failed: {error}")

    def _after_stop(self, payload: dict) -> None:
        """In the worker: gather what to show about the stop, then show it on the UI thread."""
        gdb = self._gdb
        if gdb is None:
            return
        with self._lock:
            frames = gdb.backtrace()
            shown = _breakpoint_frame(payload, frames, self.breakpoints.get(int(payload.get("bkptno") or 0)))
            if int(shown.get("level") or 0) > 0:
                gdb.select_frame(int(shown["level"]))
            registers = gdb.registers()
        self.app.call_from_thread(self._show_stop, payload, frames, shown, registers)
        self.app.call_from_thread(self.post_message, self.RunEnded(True))

    # --- display ------------------------------------------------------------------------

    def _show_stop(self, payload: dict, frames: list[dict], frame: dict, registers: dict[str, int]) -> None:
        self.stops_shown += 1
        reason = payload.get("reason", "stopped")
        if reason == "breakpoint-hit":
            reason = f"breakpoint {payload.get('bkptno')} hit"
        innermost = payload.get("frame") or {}
        inlined = f" (inside inlined {innermost.get('func', '??')})" if int(frame.get("level") or 0) > 0 else ""
        self._status(f"stopped: {reason} in {frame.get('func', '??')} {_where(frame)}{inlined}")

        backtrace = self.query_one("#backtrace", DataTable)
        backtrace.clear()
        for f in frames:
            backtrace.add_row(f.get("level", ""), f.get("func", "??"), _where(f))
        backtrace.move_cursor(row=int(frame.get("level") or 0))

        table = self.query_one("#registers", DataTable)
        table.clear()
        for name in REGISTERS:
            if name in registers:
                table.add_row(name, f"{registers[name]:#018x}")

        self.query_one("#source", Static).update(_source(frame))

    def on_unmount(self) -> None:
        self.close_now()


def _breakpoint_frame(payload: dict, frames: list[dict], location: str | None) -> dict:
    """The frame to show for a stop: for a breakpoint on a function, that function's frame even
    when code inlined into it is frame 0 (the one the user wants to look at); else frame 0."""
    innermost = payload.get("frame") or {}
    name = (location or "").split("::")[-1]
    if payload.get("reason") != "breakpoint-hit" or not name or ":" in name:  # none, or file:line
        return innermost
    return frame_stopped_in(frames, innermost, lambda func: func.split("::")[-1] == name) or innermost


def _where(frame: dict) -> str:
    if frame.get("file") and frame.get("line"):
        return f"{frame['file']}:{frame['line']}"
    return frame.get("addr", "")


def _source(frame: dict) -> Text:
    path, line = frame.get("fullname"), frame.get("line")
    if not path or not line:
        return Text("no source for this frame (no debug line info here)", style="italic")
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as error:
        return Text(f"cannot read {path}: {error.strerror}", style="italic")
    stop = int(line)
    text = Text(f"{path}\n", style="dim")
    for number in range(max(1, stop - SOURCE_CONTEXT), min(len(lines), stop + SOURCE_CONTEXT) + 1):
        marker = ">" if number == stop else " "
        text.append(f"{marker}{number:5} {lines[number - 1]}\n", style="reverse" if number == stop else "")
    return text
