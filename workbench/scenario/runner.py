"""Runs scenarios headless: each on its own Machine (own QEMU, sockets, artifact folder), several
at once with `jobs`, and says for each one whether it passed and, if not, why and where.

Every QEMU and GDB a scenario starts ends with it, on every path: a failed step, the scenario's
timeout, Ctrl-C (asyncio cancels the tasks; `Machine` and `Context.close` clean up)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from typing import Callable

from .. import config as config_module, replay as replay_module, trace, yamlmodel
from ..dwarf import LayoutError
from ..gdb import GdbError
from ..kernel_image import KernelImage, KernelImageError
from ..qemu import Machine, QemuError
from ..settings import Settings
from ..state import DebugStateError
from ..state_view import render
from ..yamlmodel import ConfigError
from . import model, steps as step_kinds
from .steps import Context, StepFailed

SERIAL_TAIL = 20
# Failures of a step that are the guest's or the user's, reported as the step's reason.
STEP_ERRORS = (StepFailed, GdbError, DebugStateError, QemuError, LayoutError, replay_module.ReplayError)
# A replay runs slower than its recording (QEMU reads its log as it goes): its whole-scenario
# timeout is this many times the scenario's. Its steps wait for the guest, not the clock.
REPLAY_TIME_FACTOR = 10


@dataclasses.dataclass
class Result:
    name: str
    path: Path | None
    passed: bool
    seconds: float
    artifacts: Path
    reason: str | None = None          # why it failed
    where: str | None = None           # "step 3 at file:12: expect ..." or "setup"
    log: list[str] = dataclasses.field(default_factory=list)
    serial_tail: list[str] = dataclasses.field(default_factory=list)
    state: str | None = None           # the kernel's debug state when it failed
    recording: Path | None = None      # where this run was recorded
    serial_difference: str | None = None  # a replay: how its console differs from the recording's

    def report(self, full: bool = False) -> str:
        """One line for a pass; where, why, steps, console and state for a failure (or `full`)."""
        head = f"{'PASS' if self.passed else 'FAIL'} {self.name}" + (f" ({self.path})" if self.path else "") \
            + f" in {self.seconds:.1f} s"
        lines = [head]
        if self.where:
            lines.append(f"  at {self.where}")
        if self.reason:
            lines.append(f"  why: {self.reason}")
        if full or not self.passed:
            if self.log:
                lines += ["  steps:", *(f"    {entry}" for entry in self.log)]
            if self.serial_tail:
                lines += [f"  last {len(self.serial_tail)} serial lines:", *(f"    | {s}" for s in self.serial_tail)]
            if self.state and not self.passed:
                lines += ["  kernel state at failure:", *(f"    | {s}" for s in self.state.splitlines())]
            lines.append(f"  artifacts: {self.artifacts}")
        if self.recording is not None:
            lines.append(f"  recorded: kwast-bench replay {self.artifacts}")
        return "\n".join(lines)


def hardware_for(scenario: model.Scenario, settings: Settings) -> config_module.HardwareConfig:
    """The scenario's config file with its overrides applied."""
    hardware = config_module.load(model.config_path(scenario, settings.root))
    if scenario.overrides is not None:
        hardware = yamlmodel.apply(hardware, scenario.overrides)
    if scenario.needs_snapshots:
        hardware = dataclasses.replace(hardware, snapshots=True)
    return hardware


# Told of each step as it starts: (its number, how many there are, what it does).
StepListener = Callable[[int, int, str], None]


# One run of a scenario file (a matrix file has several), or a file that did not load.
Run = model.Scenario | model.Unloadable


async def run(scenario: Run, settings: Settings, artifacts: Path,
              on_step: StepListener | None = None, record: bool = False,
              tape: replay_module.Tape | None = None) -> Result:
    """One scenario, start to end. `artifacts` is its own folder (emptied first). With `record`,
    the run is recorded into its `recording/` folder (workbench/replay.py); with a replaying
    `tape`, it is a replay of one."""
    started = time.monotonic()
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir(parents=True)
    name = scenario.label if isinstance(scenario, model.Unloadable) else scenario.name
    result = Result(name, scenario.path, False, 0.0, artifacts)
    if record or (isinstance(scenario, model.Scenario) and scenario.record and tape is None):
        tape = replay_module.Tape(artifacts / replay_module.FOLDER)
    try:
        if isinstance(scenario, model.Unloadable):
            raise scenario.error
        if tape is not None and not tape.replaying:
            replay_module.check_recordable(scenario, settings)
            tape.folder.mkdir()
        await _run(scenario, settings, result, on_step, tape)
    except (ConfigError, KernelImageError, QemuError) as error:  # before any step ran
        result.where, result.reason = "setup", str(error)
    result.seconds = time.monotonic() - started
    if isinstance(scenario, model.Scenario) and scenario.expect_error:
        _expected_failure(scenario.expect_error, result)
    if tape is not None and not tape.replaying:
        if tape.saved(scenario, result):
            result.recording = tape.folder
        else:  # it never got as far as a machine
            shutil.rmtree(tape.folder, ignore_errors=True)
    (artifacts / "report.txt").write_text(result.report(full=True) + "\n")
    return result


def _expected_failure(pattern: str, result: Result) -> None:
    if result.passed:
        result.passed, result.reason = False, f"expected it to fail with /{pattern}/, but every step passed"
    elif re.search(pattern, result.reason or ""):
        result.passed, result.reason = True, f"failed as expected: {result.reason}"
    else:
        result.reason = f"failed, but not with /{pattern}/: {result.reason}"


async def _run(scenario: model.Scenario, settings: Settings, result: Result, on_step: StepListener | None,
               tape: replay_module.Tape | None) -> None:
    hardware = hardware_for(scenario, settings)
    artifacts = result.artifacts
    with KernelImage(settings.kernel_elf) as image, (artifacts / "serial.log").open("w") as serial_log:
        context: Context | None = None

        def on_serial(text: str) -> None:
            serial_log.write(text)
            serial_log.flush()
            if context is not None:
                context.serial_changed.set()

        profiled = any(isinstance(step, model.Profile) for step in scenario.steps)
        options = tape.machine_options() if tape is not None else {"ram_file": True}
        machine = Machine(settings, hardware, image, scenario.append, on_serial, exec_log=profiled, **options)
        timeout = scenario.timeout * (REPLAY_TIME_FACTOR if tape is not None and tape.replaying else 1)
        async with machine:
            if tape is not None and tape.replaying:
                tape.check_machine(machine)
            context = Context(machine, image, artifacts, tape=tape)
            current, began = 0, time.monotonic()
            try:
                try:
                    async def all_steps() -> None:
                        nonlocal current
                        for current, step in enumerate(scenario.steps, 1):
                            if on_step is not None:
                                on_step(current, len(scenario.steps), model.describe(step))
                            await _step(context, scenario, current, step, result)
                    await asyncio.wait_for(all_steps(), timeout)
                    result.passed = True
                except TimeoutError:
                    step = scenario.steps[current - 1]
                    result.where = _where(scenario, current, step)
                    if time.monotonic() - began >= timeout:
                        result.reason = f"the scenario timed out after {scenario.timeout:g} s in this step"
                    else:
                        result.reason = "QEMU did not answer a QMP command in time"
                except STEP_ERRORS as error:
                    result.reason = str(error)
                if not result.passed:
                    await _collect_failure(context, result)
            finally:
                await context.close()
                _write_events(machine, artifacts / "qmp-events.jsonl")
                if tape is not None and machine.process is not None:
                    result.serial_difference = await tape.finish(context)


async def _step(context: Context, scenario: model.Scenario, index: int, step, result: Result) -> None:
    began = time.monotonic()
    tape = context.tape
    try:
        concrete = step_kinds.substitute(step, context.variables)
        if tape is not None:
            await _quietly(tape.step_begins(context, index, step))
        if tape is not None and tape.replays(step):
            said = tape.said(index)
        else:
            said = await step_kinds.RUN[type(step)](context, concrete)
        if tape is not None:
            await _quietly(tape.step_ends(context, index, said))
    except STEP_ERRORS:
        result.where = _where(scenario, index, step)
        result.log.append(f"FAIL {index} {model.describe(step)} ({time.monotonic() - began:.2f} s)")
        if tape is not None:
            await _quietly(tape.step_ends(context, index, None))
        raise
    result.log.append(f"ok   {index} {model.describe(step)}: {said} ({time.monotonic() - began:.2f} s)")


async def _quietly(call) -> None:
    """A recording's or replay's round trip to a QEMU that is ending by itself (the kernel
    shut down): the next step sees that it has ended."""
    with contextlib.suppress(*replay_module.QEMU_GONE):
        await call


def _where(scenario: model.Scenario, index: int, step) -> str:
    at = f"{scenario.path}:{step.line}" if scenario.path and step.line else "(python)"
    return f"step {index} at {at}: {model.describe(step)}"


async def _collect_failure(context: Context, result: Result) -> None:
    """What the user needs to see why: the console's last lines and the kernel's state."""
    result.serial_tail = context.machine.serial_text.splitlines()[-SERIAL_TAIL:]
    if not context.qemu_running():
        return
    try:
        # The first read parses the kernel's DWARF: seconds for a big kernel.
        snap = await asyncio.wait_for(context.state(patience=0.5, until_published=False), 60)
        result.state = render(snap, events=8)
        # The ring's events up to the failure, beside serial.log, for Perfetto.
        events, names = await context.ring_now(), trace.Names()
        names.learn(snap)
        trace.write(result.artifacts / "events-at-failure.json", events, names, snap.tsc_per_us)
    except (DebugStateError, LayoutError, TimeoutError) as error:
        result.state = f"(no readable kernel state: {str(error) or 'timed out'})"
    (result.artifacts / "state-at-failure.txt").write_text(result.state + "\n")


def _write_events(machine: Machine, path: Path) -> None:
    with path.open("w") as file:
        for event in machine.events:
            file.write(json.dumps(dict(event), default=str) + "\n")


# --- many at once -----------------------------------------------------------------------

def discover(paths: list[Path]) -> list[Path]:
    """Scenario files: given files, and *.yaml under given directories except in `configs/`
    folders (hardware configs kept beside scenarios)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.y*ml") if p.suffix in (".yaml", ".yml")
                            and "configs" not in p.relative_to(path).parts[:-1])
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(path, 0, "", "no such scenario file or directory")
    return found


def load_all(files: list[Path]) -> list[Run]:
    """Every run of these scenario files, in order: one per matrix combination; a file with a
    mistake stays in the list, to fail with it when run."""
    runs: list[Run] = []
    for path in files:
        try:
            runs += model.load(path)
        except ConfigError as error:
            runs.append(model.Unloadable(path, error))
    return runs


def artifact_dirs(runs: list[Run], root: Path) -> list[Path]:
    """One folder per run, by file name and combination (`faults.div_zero`); a file name seen in
    two folders gets its parent's name too."""
    files = {run.path for run in runs}
    stems = [path.stem for path in files]

    def folder(run: Run) -> str:
        name = f"{run.path.parent.name}-{run.path.stem}" if stems.count(run.path.stem) > 1 else run.path.stem
        return f"{name}.{run.variant}" if isinstance(run, model.Scenario) and run.variant else name

    return [root / folder(run) for run in runs]


async def run_all(runs: list[Run], settings: Settings, artifacts: Path, jobs: int = 1,
                  on_result=None, record: bool = False) -> list[Result]:
    slots = asyncio.Semaphore(max(1, jobs))

    async def one(scenario: Run, folder: Path) -> Result:
        async with slots:
            result = await run(scenario, settings, folder, record=record)
        if on_result is not None:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(r, f) for r, f in zip(runs, artifact_dirs(runs, artifacts)))))
