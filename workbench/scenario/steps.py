"""What each step kind does to a running `Machine`. A step that does not hold raises
`StepFailed` with the reason in the user's terms; the runner adds where and what it saw."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from .. import dwarf, profile, trace
from ..gdb import Gdb, GdbError, frame_stopped_in
from ..kernel_image import KernelImage
from ..qemu import BootOutcome, Machine, screen
from ..state import DebugStateError, StateReader, memory_of, wait_published
from ..state_words import explain
from . import matrix, model


class StepFailed(Exception):
    pass


class GdbSession:
    """GDB attached on first use. pygdbmi blocks, so calls run in a thread; `abort` kills GDB so
    a call still waiting in that thread (a timeout, Ctrl-C) ends at once."""

    def __init__(self, elf: Path, socket: Path):
        self.gdb = Gdb(elf, socket)
        self.mark = 0  # events before this index are older than the last continue

    async def start(self) -> None:
        await asyncio.to_thread(self.gdb.start)

    async def call(self, function, *args):
        return await asyncio.to_thread(function, *args)

    def abort(self) -> None:
        if self.gdb.pid is not None:
            try:
                os.kill(self.gdb.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def close(self, detach: bool = True) -> None:
        if not detach:
            self.abort()
        await asyncio.to_thread(self.gdb.close)


@dataclasses.dataclass
class Context:
    """One scenario's run: its machine, the captured variables, and where output goes."""
    machine: Machine
    image: KernelImage
    artifacts: Path
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    cursor: int = 0                    # serial-console offset after the last `expect` match
    gdb: GdbSession | None = None
    outcome: BootOutcome | None = None
    tape: Any = None                   # a replay.Tape when the run is recorded or a replay
    serial_changed: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    _reader: StateReader | None = None
    _memory: Any = None
    _published: bool = False

    async def state(self, patience: float = 1.0, until_published: bool = True):
        if self._reader is None:
            # Parsing the DWARF of a big kernel takes seconds: never on the loop other scenarios share.
            self._reader = await asyncio.to_thread(StateReader, self.image.path)
            self._memory = memory_of(self.machine)
        self._reader.patience = patience
        if not self._published and until_published:
            # Until the kernel has published its CPUs the block is zeros or half set up.
            kernel = await wait_published(self._reader, self._memory, timeout=30)
            self._published = True
            return kernel
        return await self._reader.read(self._memory)

    async def ring_now(self) -> list:
        """Every event the kernel's ring holds now (after a first `state`)."""
        return await trace.ring_now(self._reader, self._memory)

    async def attach_gdb(self) -> GdbSession:
        if self.gdb is None:
            session = GdbSession(self.image.path, self.machine.gdb_socket)
            self.gdb = session  # before start: a timeout during start must still end this GDB
            await session.start()
        return self.gdb

    async def close(self) -> None:
        if self.gdb is not None:
            gdb, self.gdb = self.gdb, None
            await gdb.close(detach=False)
        if self._memory is not None and hasattr(self._memory, "close"):
            self._memory.close()
            self._memory = None

    async def out_of_time(self, deadline: float) -> bool:
        """Whether a step waiting for something has waited long enough: until `deadline`, or on
        a replay until the guest is where the recorded step ended, so it is judged at the same
        instruction however fast the replay runs."""
        if self.tape is not None and self.tape.replaying and self.gdb is None:
            return await self.tape.reached(self)
        return time.monotonic() > deadline

    def qemu_running(self) -> bool:
        process = self.machine.process
        return process is not None and process.returncode is None


# --- ${name} substitution -------------------------------------------------------------

def substitute(step: Any, variables: dict[str, str]) -> Any:
    """The step with `${name}` in its strings replaced by the values captured so far."""
    def text(value: str) -> str:
        def one(match: re.Match) -> str:
            name = match.group(1)
            if name not in variables:
                known = ", ".join(sorted(variables)) or "none yet"
                raise StepFailed(f"unknown variable ${{{name}}} (defined so far: {known})")
            return variables[name]
        return matrix.VARIABLE.sub(one, value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {f.name: walk(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
            return dataclasses.replace(value, **changes)
        return value

    return walk(step)


# --- the steps -------------------------------------------------------------------------

async def boot(ctx: Context, step: model.Boot) -> str:
    if ctx.gdb is not None:  # GDB holds the guest: only GDB may resume it
        ctx.gdb.mark = len(ctx.gdb.gdb.events)
        await ctx.gdb.call(ctx.gdb.gdb.cont)
        return "resumed under GDB"
    await ctx.machine.resume()
    return "running"


async def expect(ctx: Context, step: model.Expect) -> str:
    return await _expect(ctx, [step.pattern], step.timeout)


async def expect_all(ctx: Context, step: model.ExpectAll) -> str:
    return await _expect(ctx, step.patterns, step.timeout)


async def _expect(ctx: Context, patterns: list[str], timeout: float) -> str:
    """Waits until every pattern matches after the cursor, then moves it past the last match."""
    regexes = [re.compile(pattern, re.MULTILINE) for pattern in patterns]
    deadline = time.monotonic() + timeout
    while True:
        ctx.serial_changed.clear()
        over = await ctx.out_of_time(deadline)  # first: on a replay, it waits for the console's last bytes
        ended = not ctx.qemu_running()
        if ended:  # its last bytes may still be on their way to us
            await ctx.machine.serial_settled()
        text = ctx.machine.serial_text
        found = [regex.search(text, ctx.cursor) for regex in regexes]
        if all(found):
            ctx.cursor = max(match.end() for match in found)  # type: ignore[union-attr]
            captured = {k: v for match in found for k, v in match.groupdict().items() if v is not None}  # type: ignore[union-attr]
            ctx.variables.update(captured)
            matched = ", ".join(repr(match.group(0)) for match in found)  # type: ignore[union-attr]
            return f"matched {matched}" + (f", captured {captured}" if captured else "")
        missing = " and ".join(f"/{p}/" for p, match in zip(patterns, found) if match is None)
        if ended:
            raise StepFailed(f"QEMU ended before the console matched {missing}")
        if over:
            raise StepFailed(f"the console did not match {missing} within {timeout:g} s")
        try:
            await asyncio.wait_for(ctx.serial_changed.wait(), max(0.01, min(deadline - time.monotonic(), 0.1)))
        except asyncio.TimeoutError:
            pass


async def reject(ctx: Context, step: model.Reject) -> str:
    found = re.search(step.pattern, ctx.machine.serial_text, re.MULTILINE)
    if found:
        line = ctx.machine.serial_text.count("\n", 0, found.start()) + 1
        raise StepFailed(f"console line {line} matches /{step.pattern}/: {found.group(0)!r}")
    return "no line matches"


async def send_keys(ctx: Context, step: model.SendKeys) -> str:
    return f"{await ctx.machine.send_keys(step.text, step.keys)} key presses sent"


def _field(kernel, path: str) -> Any:
    """`cpus[0].ticks`, `threads[idle].state`, `cpu_count`, `raw.sequence` in a snapshot."""
    value: Any = kernel
    for name, index in re.findall(r"(\w+)|\[([^\]]+)\]", path):
        try:
            if name:
                value = getattr(value, name) if hasattr(value, name) else getattr(kernel.raw, name)
            elif index.isdigit():
                value = value[int(index)]
            else:  # a record in a list, by its name
                value = next(item for item in value if item.get("name") == index)
        except (AttributeError, IndexError, KeyError, StopIteration, TypeError):
            raise StepFailed(f"the kernel state has no {path!r} (failed at {name or index!r})") from None
    return value


def _number(text: str, what: str) -> int | float:
    try:
        return int(text, 0)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise StepFailed(f"{what} {text!r} is not a number") from None


async def state(ctx: Context, step: model.State) -> str:
    if step.fails_with:
        try:
            await ctx.state(patience=0.2, until_published=False)
        except DebugStateError as error:
            if re.search(step.fails_with, str(error)):
                return f"reading the state failed as expected: {error}"
            raise StepFailed(f"reading the state failed, but not with /{step.fails_with}/: {error}") from None
        raise StepFailed(f"reading the state succeeded; expected it to fail with /{step.fails_with}/")
    said = []
    deadline = time.monotonic() + step.timeout
    while step.thread or step.server or step.endpoint or step.value or step.cpus_online is not None:
        kernel = await ctx.state()
        said_now = explain(kernel, events=0)
        problem = (_thread_problem(said_now, step.thread) or _server_problem(said_now, step.server)
                   or _endpoint_problem(said_now, step.endpoint) or _value_problem(kernel, step)
                   or _cpus_problem(kernel, step.cpus_online))
        if problem is None:
            break
        if await ctx.out_of_time(deadline):
            raise StepFailed(f"{problem} (waited {step.timeout:g} s)")
        await asyncio.sleep(0.05)
    if step.cpus_online is not None:
        said.append(f"{_online(kernel)} CPUs online")
    if step.thread:
        thread = next(t for t in said_now.threads if t.name == step.thread.name and _thread_holds(t, step.thread))
        said.append(f"thread {thread.name} {thread.state} on CPU {thread.cpu}" + (f", waits: {thread.waits}" if thread.waits else ""))
    if step.server:
        server = next(s for s in said_now.servers if s.name == step.server.name)
        said.append(f"server {server.name} {server.status}, restarts {server.restarts}, memory {server.memory}")
    if step.endpoint:
        endpoint = next(e for e in said_now.endpoints if e.name == step.endpoint.name)
        said.append(f"endpoint {endpoint.name}: calls {endpoint.calls}, replies {endpoint.replies}, errors {endpoint.errors}")
    if step.value:
        value = _field(kernel, step.value)
        if step.save_as:
            ctx.variables[step.save_as] = str(value)
        said.append(f"{step.value} = {value}")
    if step.no_traps:
        kernel = await ctx.state()
        traps = [e for e in kernel.events if e.kind == "Trap"]
        if traps:
            raise StepFailed(f"{len(traps)} trap event(s) in the kernel's event ring, the last: {dict(traps[-1])}")
        said.append("no traps")
    for path, rising in ((step.rising, True), (step.steady, False)):
        if path:
            before = _field(await ctx.state(), path)
            await asyncio.sleep(step.over)
            after = _field(await ctx.state(), path)
            if rising and not after > before:
                raise StepFailed(f"{path} did not rise over {step.over:g} s: {before} -> {after}")
            if not rising and after != before:
                raise StepFailed(f"{path} changed over {step.over:g} s: {before} -> {after}")
            said.append(f"{path} {before} -> {after}")
    return ", ".join(said)


def _thread_problem(said, wanted: model.ThreadIs | None) -> str | None:
    if wanted is None:
        return None
    if any(_thread_holds(t, wanted) for t in said.threads if t.name == wanted.name):
        return None
    now = ", ".join(f"{t.name} {t.state} on CPU {t.cpu}" + (f" ({t.waits})" if t.waits else "") for t in said.threads) or "none"
    want = " ".join(w for w in (wanted.state and f"in state {wanted.state}", wanted.waits and f"waiting /{wanted.waits}/",
                                wanted.cpu is not None and f"on CPU {wanted.cpu}") if w)
    return f"no thread {wanted.name!r}" + (f" {want}" if want else "") + f"; threads now: {now}"


def _thread_holds(thread, wanted: model.ThreadIs) -> bool:
    return ((wanted.state is None or thread.state == wanted.state)
            and (wanted.waits is None or re.search(wanted.waits, thread.waits) is not None)
            and (wanted.cpu is None or thread.cpu == wanted.cpu))


def _online(kernel) -> int:
    return sum(1 for cpu in kernel.cpus if cpu.online)


def _cpus_problem(kernel, wanted: int | None) -> str | None:
    if wanted is None or _online(kernel) == wanted:
        return None
    return f"{_online(kernel)} CPUs online, not {wanted}"


def _server_problem(said, wanted: model.ServerIs | None) -> str | None:
    if wanted is None:
        return None
    server = next((s for s in said.servers if s.name == wanted.name), None)
    if server is None:
        return f"no server {wanted.name!r}; servers now: {', '.join(s.name for s in said.servers) or 'none'}"
    checks = [
        (wanted.state is None or server.state == wanted.state, f"state {server.state}, not {wanted.state}"),
        (wanted.restarts is None or server.restarts == wanted.restarts, f"restarts {server.restarts}, not {wanted.restarts}"),
        (wanted.restarts_at_least is None or server.restarts >= wanted.restarts_at_least,
         f"restarts {server.restarts} < {wanted.restarts_at_least}"),
        (wanted.memory_at_least is None or server.memory >= wanted.memory_at_least,
         f"memory {server.memory} < {wanted.memory_at_least}"),
        (wanted.reason is None or re.search(wanted.reason, server.reason), f"last reason {server.reason!r} !~ /{wanted.reason}/"),
    ]
    failed = [why for ok, why in checks if not ok]
    return f"server {server.name} ({server.status}): " + "; ".join(failed) if failed else None


def _endpoint_problem(said, wanted: model.EndpointIs | None) -> str | None:
    if wanted is None:
        return None
    endpoint = next((e for e in said.endpoints if e.name == wanted.name), None)
    if endpoint is None:
        return f"no endpoint {wanted.name!r}; endpoints now: {', '.join(e.name for e in said.endpoints) or 'none'}"
    checks = [
        (wanted.calls_at_least is None or endpoint.calls >= wanted.calls_at_least, f"calls {endpoint.calls} < {wanted.calls_at_least}"),
        (wanted.replies_at_least is None or endpoint.replies >= wanted.replies_at_least,
         f"replies {endpoint.replies} < {wanted.replies_at_least}"),
        (wanted.errors is None or endpoint.errors == wanted.errors, f"errors {endpoint.errors}, not {wanted.errors}"),
        (wanted.receivers is None or len(endpoint.receivers) == wanted.receivers,
         f"receivers {endpoint.receivers}, not {wanted.receivers} of them"),
    ]
    failed = [why for ok, why in checks if not ok]
    return f"endpoint {endpoint.name}: " + "; ".join(failed) if failed else None


def _value_problem(kernel, step: model.State) -> str | None:
    if not step.value:
        return None
    return _bounds_problem(_field(kernel, step.value), step.value, step)


def _bounds_problem(value: Any, what: str, step: model.State | model.Compare) -> str | None:
    """Why `value` is not within the step's equals / at_least / at_most, or None."""
    checks = [(step.equals, "==", lambda v, x: str(v) == x if not isinstance(v, (int, float)) else v == _number(x, "equals")),
              (step.at_least, ">=", lambda v, x: v >= _number(x, "at_least")),
              (step.at_most, "<=", lambda v, x: v <= _number(x, "at_most"))]
    for limit, sign, holds in checks:
        if limit is not None and not holds(value, limit):
            return f"{what} is {value}, expected {sign} {limit}"
    return None


async def compare(ctx: Context, step: model.Compare) -> str:
    value = _number(step.value, "value")
    problem = _bounds_problem(value, "the value", step)
    if problem:
        raise StepFailed(problem)
    bounds = [f"{sign} {limit}" for limit, sign in ((step.equals, "=="), (step.at_least, ">="), (step.at_most, "<="))
              if limit is not None]
    return f"{value}: {', '.join(bounds)}"


async def gdb(ctx: Context, step: model.Gdb) -> str:
    session = await ctx.attach_gdb()
    g = session.gdb
    if step.break_:
        number = await session.call(g.break_at, step.break_)
        return f"breakpoint {number} at {step.break_}"
    if step.continue_:
        session.mark = len(g.events)
        await session.call(g.cont)
        return "continued"
    if step.expect_stop:
        try:
            stopped = await session.call(g.wait_stopped, step.timeout, session.mark)
        except GdbError as error:
            raise StepFailed(f"GDB: {error} (expected a stop in /{step.expect_stop}/)") from None
        session.mark = len(g.events)
        frame = stopped.get("frame", {})
        where = f"{frame.get('func', '?')} at {frame.get('file', '?')}:{frame.get('line', '?')}"
        # The expected function may have code inlined into it running: it becomes the selected
        # frame, so that `print` sees its arguments and locals.
        frames = await session.call(g.backtrace)
        match = frame_stopped_in(frames, frame, lambda func: re.search(step.expect_stop, func))
        if match is None:
            raise StepFailed(f"stopped ({stopped.get('reason')}) in {where}, expected /{step.expect_stop}/")
        if int(match.get("level", 0)) > 0:
            await session.call(g.select_frame, int(match["level"]))
            where = f"{match.get('func')} at {match.get('file', '?')}:{match.get('line', '?')} (inside inlined {where})"
        return f"stopped ({stopped.get('reason')}) in {where}"
    if step.detach:
        ctx.gdb = None
        await session.close()
        return "detached; the guest runs on"
    what = step.print or step.command
    output = await session.call(g.evaluate if step.print else g.console, what)
    output = output.strip()
    if step.equals is not None and output != step.equals:
        raise StepFailed(f"{what} is {output!r}, expected {step.equals!r}")
    if step.matches is not None and not re.search(step.matches, output):
        raise StepFailed(f"{what} gave {output!r}, which does not match /{step.matches}/")
    if step.save_as:
        ctx.variables[step.save_as] = output
    return f"{what} = {output!r}"


async def inject(ctx: Context, step: model.Inject) -> str:
    if step.action in ("pause", "resume"):
        await (ctx.machine.pause() if step.action == "pause" else ctx.machine.resume())
        return f"guest {await ctx.machine.status()}"
    if step.action == "nmi":
        await ctx.machine.inject_nmi()
        return "NMI injected"
    if step.action == "kill":
        return await _kill(ctx, step.server or "")
    if step.action == "corrupt_message":
        await _control(ctx, "corrupt_next_message", 1)
        return "the kernel will corrupt the next IPC message"
    if step.action == "irq_storm":
        # One press and release per QMP command, as fast as QMP goes: QEMU's PS/2 queue holds
        # only a few scan codes, so bigger batches would mostly overflow it, not interrupt.
        for _ in range(step.count):
            await ctx.machine.tap_key("shift")
        return f"{step.count} key presses sent"
    address = ctx.image.symbols.get(step.symbol or "")
    if address is None:
        raise StepFailed(f"no symbol {step.symbol!r} in {ctx.image.path}")
    data = bytes.fromhex(step.bytes or "")
    await _write(ctx, address + step.offset, data, stay_attached=True)
    return f"wrote {data.hex()} at {step.symbol}+{step.offset:#x} ({address + step.offset:#x})"


async def _kill(ctx: Context, server: str) -> str:
    """Writes the server's process id into the kernel's KWAST_DEBUG_CONTROL (layout from DWARF)."""
    kernel = await ctx.state()
    processes = {t.name: t.process for t in kernel.threads if t.process and t.state != "Dead"}
    if server not in processes:
        raise StepFailed(f"no running server {server!r}; running now: {', '.join(sorted(processes)) or 'none'}")
    await _control(ctx, "kill_process", processes[server])
    return f"asked the kernel to kill {server} (process {processes[server]})"


async def _control(ctx: Context, field: str, value: int) -> None:
    """Writes a field of the kernel's KWAST_DEBUG_CONTROL (layout from DWARF)."""
    control = await asyncio.to_thread(dwarf.variable, ctx.image.path, "KWAST_DEBUG_CONTROL")
    member = control.type.member(field)
    await _write(ctx, control.address + member.offset, value.to_bytes(member.type.size, "little"), stay_attached=False)


async def _write(ctx: Context, address: int, data: bytes, stay_attached: bool) -> None:
    """Guest memory written as a debugger does. In a recording the kernel makes the write,
    asked through its debug port, as QEMU's log has no debugger's writes (workbench/replay.py);
    else GDB, attached for it if it was not, and detached again unless `stay_attached`
    (attaching stopped the guest: leave as we came)."""
    if ctx.tape is not None:
        await ctx.machine.debug_port_write(address, data)
        return
    attached = ctx.gdb is not None
    session = await ctx.attach_gdb()
    await session.call(session.gdb.write_memory, address, data)
    if not attached and not stay_attached:
        ctx.gdb = None
        await session.close(detach=True)


async def screendump(ctx: Context, step: model.Screendump) -> str:
    path = ctx.artifacts / step.file
    picture = await ctx.machine.screendump(path)
    for wanted, got, what in ((step.width, picture.width, "width"), (step.height, picture.height, "height")):
        if wanted is not None and wanted != got:
            raise StepFailed(f"screen {what} is {got}, expected {wanted}")
    said = f"{path.name}: {picture.width}x{picture.height}"
    if step.shows is None:
        return said
    text = await ctx.machine.screen_text()
    if not re.search(step.shows, text.text, re.MULTILINE):
        raise StepFailed(f"the text screen does not match /{step.shows}/; it reads:\n{text.text}")
    problem = screen.mismatch(picture, text)
    if problem:
        raise StepFailed(f"{path.name}: {problem}")
    return f"{said}, showing the text screen, which matches /{step.shows}/"


async def snapshot(ctx: Context, step: model.Snapshot) -> str:
    started = time.perf_counter()
    await ctx.machine.save_snapshot(step.name)
    return f"saved {step.name!r} in {(time.perf_counter() - started) * 1000:.0f} ms"


async def restore(ctx: Context, step: model.Restore) -> str:
    started = time.perf_counter()
    await ctx.machine.load_snapshot(step.name)
    return f"restored {step.name!r} in {(time.perf_counter() - started) * 1000:.0f} ms"


async def expect_exit(ctx: Context, step: model.ExpectExit) -> str:
    outcome = await ctx.machine.wait_exit(step.timeout)
    ctx.outcome = outcome
    if outcome.status == "timeout":
        raise StepFailed(f"the guest was still running after {step.timeout:g} s (expected {step.status})")
    if outcome.status != step.status or (step.code is not None and outcome.qemu_exit != step.code):
        wanted = step.status + (f" (QEMU status {step.code})" if step.code is not None else "")
        raise StepFailed(f"{outcome.describe()} (QEMU status {outcome.qemu_exit}); expected {wanted}")
    return outcome.describe()


async def trace_step(ctx: Context, step: model.Trace) -> str:
    drained, names, tsc_per_us = await trace.record(ctx.machine, ctx.image.path, step.seconds)
    path, _ = trace.write(ctx.artifacts / step.out, drained.events, names, tsc_per_us, drained.lost)
    if drained.dropped:
        raise StepFailed(f"{drained.dropped} events were overwritten before they were drained (see {path.name})")
    return f"{path.name}: {len(drained.events)} events"


async def profile_step(ctx: Context, step: model.Profile) -> str:
    if not ctx.machine.exec_log:
        raise StepFailed("the machine logs no blocks (a profile step in a Python scenario needs exec_log)")
    deadline = time.monotonic() + step.timeout
    while True:  # until the `to` line has come and the log shows its last byte written
        serial = ctx.machine.serial_text
        try:
            counts, result = await asyncio.to_thread(profile.measure, ctx.machine.exec_log_path, ctx.image.path,
                                                     serial, ctx.machine.modules(), step.from_, step.to)
            if counts.console_bytes >= profile.window_bytes(serial, step.from_, step.to)[1]:
                break
        except profile.ProfileError as error:
            if time.monotonic() > deadline:
                raise StepFailed(str(error)) from None
        if time.monotonic() > deadline:
            raise StepFailed("the exec log did not reach the window's end in time")
        await asyncio.sleep(0.5)
    profile.write(result, ctx.artifacts / step.out, f"from /{step.from_}/ to /{step.to}/")
    top, count = result.self_counts()[0]
    return f"{step.out}/: {result.total} instructions; most in {top} ({100 * count / result.total:.1f} %)"


async def call(ctx: Context, step: model.Call) -> str:
    result = step.function(ctx)
    if inspect.isawaitable(result):
        result = await result
    return "" if result is None else str(result)


RUN = {model.Boot: boot, model.Expect: expect, model.ExpectAll: expect_all, model.Reject: reject, model.SendKeys: send_keys,
       model.State: state, model.Gdb: gdb, model.Inject: inject, model.Screendump: screendump,
       model.Compare: compare, model.Snapshot: snapshot, model.Restore: restore, model.ExpectExit: expect_exit,
       model.Trace: trace_step, model.Profile: profile_step, model.Call: call}
