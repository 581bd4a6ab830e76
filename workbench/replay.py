"""Recording a scenario run and replaying it (QEMU's record/replay under icount).

A recording is the folder `recording/` in the scenario's artifact folder: QEMU's log of every
input the guest saw (`replay.bin`), the console's bytes (`serial.bin`), the scenario file as it
was (`scenario.yaml`) and `recording.json`: the exact QEMU command line, the hardware config,
the SHA-256 of the kernel ELF and every server artifact, and for each step the guest
instruction count at which it ended and what it said.

QEMU's log holds what devices give the guest (keys, clocks, interrupts, a UART's input), not
what a debugger writes into guest memory. So a recorded run's kill and corruption steps do not
write through GDB: they send their write to the kernel's debug port (a UART; workbench/
debug_port.py), whose bytes the replay receives at the same instruction. (Stopping the guest to
write at a known instruction was tried: QEMU 7.2 cannot replay every stop of a guest that
idles; on a loaded host some recordings then stalled part way, see README.) Each step of the
replay is judged with the guest held at the instruction where the recorded step ended: the
judgement depends on what the guest did, not on how fast the replay runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import shutil
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .artifacts import digest
from qemu.qmp import ExecInterruptedError, StateError

from .kernel_image import KernelImage
from .qemu import Machine, QemuError
from .qemu.monitor import SNAPSHOT_NODE
from .scenario import model
from .yamlmodel import ConfigError

FOLDER = "recording"
REPLAY_FOLDER = "replay"
FORMAT = 2
# A replay stalled this long without the guest moving is stuck (a log that does not fit).
STALL_SECONDS = 60
# A replay under a debugger whose QEMU answers no QMP command this long, and runs nothing
# meanwhile, is hung: QEMU 7.2 can deadlock in its own reverse-continue (`_end_if_hung`).
HUNG_SECONDS = 20


class ReplayError(Exception):
    pass


# What asking a QEMU that is ending by itself (the kernel shut down) raises.
QEMU_GONE = (QemuError, asyncio.TimeoutError, ConnectionError, StateError, ExecInterruptedError)


@dataclass
class StepMark:
    end: int | None                    # guest instructions when the step ended; None: QEMU had ended
    said: str = ""


@dataclass
class Recording:
    scenario_path: str                 # as the recorded run named it (relative to where it ran)
    scenario_file: str                 # the same, absolute
    variant: str
    argv: list[str]
    socket_dir: str
    digests: dict[str, str]            # file -> SHA-256: the kernel ELF and each server artifact
    hardware: dict
    append: str
    steps: list[StepMark]
    end: int | None = None             # guest instructions when the run ended; None: QEMU ended by itself
    serial_size: int = 0
    passed: bool = False
    where: str | None = None
    reason: str | None = None
    log: list[str] = field(default_factory=list)
    seconds: float = 0.0
    format: int = FORMAT

    def save(self, folder: Path) -> None:
        (folder / "recording.json").write_text(json.dumps(dataclasses.asdict(self), indent=1, default=str) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Recording:
        path = folder / "recording.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ReplayError(f"{folder}: no recording here ({path.name} missing): record with "
                              f"`kwast-bench run --record` or `record: true`") from None
        except ValueError as error:
            raise ReplayError(f"{path}: not a recording: {error}") from None
        if data.get("format") != FORMAT:
            raise ReplayError(f"{path}: recording format {data.get('format')}, this workbench reads {FORMAT}")
        try:
            data["steps"] = [StepMark(**mark) for mark in data["steps"]]
            return cls(**data)
        except (KeyError, TypeError) as error:
            raise ReplayError(f"{path}: not a recording this workbench reads: {error}") from None


def digests(machine: Machine) -> dict[str, str]:
    files = [machine.image.path] + [Path(module.split(" ")[0]) for module in machine.modules()]
    return {str(path): digest(path) for path in files}


def _portable(argv: list[str], socket_dir: str) -> list[str]:
    """The command line with what differs between two runs of one recording named, not given,
    and without the snapshot disk, which holds no guest state (a reverse replay adds one)."""
    argv = list(argv)
    for index, arg in enumerate(argv):
        if arg == "-blockdev" and f"node-name={SNAPSHOT_NODE}," in argv[index + 1]:
            del argv[index:index + 2]
            break
    return [re.sub(r"rr=(record|replay),rrfile=[^,]*", "rr=MODE,rrfile=LOG", a.replace(socket_dir, "PRIVATE_DIR"))
            for a in argv]


class Tape:
    """The runner's side of recording or replaying one scenario run (`runner.run`)."""

    def __init__(self, folder: Path, recording: Recording | None = None):
        self.folder = folder               # the recording folder
        self.recording = recording         # given: replaying it
        self.marks: list[StepMark] = []    # recording: one per step run so far
        self.current = 0                   # the step running (1-based)
        self.started = time.monotonic()
        self._machine: dict | None = None  # recording: the machine's part, once it has ended
        self._progress: tuple[int, float] | None = None  # replaying: a position, and since when

    @property
    def replaying(self) -> bool:
        return self.recording is not None

    @property
    def rr_file(self) -> Path:
        return self.folder / "replay.bin"

    def machine_options(self) -> dict[str, Any]:
        return {"rr": "replay" if self.replaying else "record", "rr_file": self.rr_file, "ram_file": True}

    # --- the machine ----------------------------------------------------------------------

    def check_machine(self, machine: Machine) -> None:
        """A replay runs the recorded kernel and servers on the recorded command line, or not at all."""
        assert self.recording is not None and machine.socket_dir is not None
        recorded, now = self.recording.digests, digests(machine)
        differ = [f"  {path}: recorded {recorded.get(path, 'absent')[:16]}, now {now.get(path, 'absent')[:16]}"
                  for path in sorted(set(recorded) | set(now)) if recorded.get(path) != now.get(path)]
        if differ:
            raise ReplayError("the recording was made with a different build; these differ (SHA-256):\n"
                              + "\n".join(differ) + "\n  check out and build the recorded commit to replay it")
        was = _portable(self.recording.argv, self.recording.socket_dir)
        argv = _portable(machine.argv(), str(machine.socket_dir))
        if was != argv:
            changed = [f"  recorded {a!r}, now {b!r}" for a, b in zip(was, argv) if a != b]
            changed += [f"  recorded only: {a!r}" for a in was[len(argv):]] + [f"  now only: {b!r}" for b in argv[len(was):]]
            raise ReplayError("the QEMU command line differs from the recorded one:\n" + "\n".join(changed))

    # --- steps ----------------------------------------------------------------------------

    def replays(self, step: Any) -> bool:
        """On a replay, steps that only give the guest input are not run again: their input is
        in QEMU's log (keys, interrupts, what the debug port received)."""
        if not self.replaying:
            return False
        return isinstance(step, (model.SendKeys, model.Inject))

    def said(self, index: int) -> str:
        assert self.recording is not None
        return self.recording.steps[index - 1].said

    def _mark(self, index: int) -> StepMark:
        assert self.recording is not None
        if index > len(self.recording.steps):
            raise ReplayError(f"the replay got to step {index}; the recording ended at step {len(self.recording.steps)}")
        return self.recording.steps[index - 1]

    async def step_begins(self, ctx, index: int, step: Any) -> None:
        self.current = index
        if not self.replaying:
            self.marks.append(StepMark(None))
            return
        machine, mark = ctx.machine, self._mark(index)
        if not ctx.qemu_running():
            return
        if ctx.gdb is not None:
            if isinstance(step, model.Gdb) and step.detach:
                await self._hold_at_next(machine, index)  # GDB leaves the guest running
            return
        position = await machine.replay_position()
        if mark.end is None:  # recorded, QEMU ended by itself in this step: so it will here
            if await machine.status() == "paused":
                await machine.resume()
        elif mark.end > position:
            await machine.replay_break(mark.end)
            if await machine.status() == "paused":
                await machine.resume()
        elif isinstance(step, model.Boot):
            await self._hold_at_next(machine, index)

    async def _hold_at_next(self, machine: Machine, index: int) -> None:
        """A break at the first recorded end ahead, so a guest let run never runs past it."""
        assert self.recording is not None
        position = await machine.replay_position()
        ahead = [m.end for m in self.recording.steps[index - 1:] if m.end is not None] + [self.recording.end]
        target = next((end for end in ahead if end is not None and end > position), None)
        if target is not None:
            await machine.replay_break(target)

    async def step_ends(self, ctx, index: int, said: str | None) -> None:
        """Recording: where the guest is. Replaying a step that held: the guest run on to where
        the recorded one ended, so the next step starts from the same instruction."""
        machine = ctx.machine
        if not self.replaying:
            mark = self.marks[-1]
            mark.said = said or ""
            if ctx.qemu_running():
                with contextlib.suppress(*QEMU_GONE):  # else it ended by itself meanwhile: end None
                    mark.end = await machine.replay_position()
            return
        end = self._mark(index).end
        if said is not None and end is not None and ctx.gdb is None and ctx.qemu_running():
            await self._run_to(machine, end)

    async def reached(self, ctx) -> bool:
        """Replaying: the guest is where the running step ended when recorded (and every byte
        it wrote to the console by then has been read)."""
        end = self._mark(self.current).end
        machine = ctx.machine
        if end is None or not ctx.qemu_running():
            return False
        try:
            status, position = await machine.status(), await machine.replay_position()
        except QEMU_GONE:  # ended by itself meanwhile: the step sees that
            return False
        if status != "paused" or position < end:
            if status == "running":
                self._check_moving(position, end, status)
            return False
        await machine.serial_settled()
        return True

    def _check_moving(self, position: int, target: int, status: str) -> None:
        """Raises once the replay has stayed at `position` for STALL_SECONDS."""
        now = time.monotonic()
        if self._progress is None or self._progress[0] != position:
            self._progress = (position, now)
        elif now - self._progress[1] > STALL_SECONDS:
            # Paused short of it: the log does not fit; "running" without a step forward:
            # QEMU's replay is stuck, as after a recorded stop that dropped a warp.
            raise ReplayError(f"the replay stopped at instruction {position} short of {target} "
                              f"({status}, no progress for {STALL_SECONDS} s): "
                              "the log does not fit this run, or QEMU's replay is stuck (QEMU 7.2 cannot "
                              "always replay a recording stopped while its guest idled: by a GDB step or "
                              "a pause; see README, Recording a run)")

    async def _run_to(self, machine: Machine, icount: int) -> None:
        """Lets the replaying guest run to instruction `icount` and holds it there."""
        position = await machine.replay_position()
        if position >= icount:
            return
        await machine.replay_break(icount)
        # Resumed only if held short of the break: a guest that reached it meanwhile stays.
        if await machine.status() == "paused" and await machine.replay_position() < icount:
            await machine.resume()
        self._progress = None
        while position < icount or await machine.status() == "running":
            if machine.process is None or machine.process.returncode is not None:
                return
            await asyncio.sleep(0.02)
            position = await machine.replay_position()
            self._check_moving(position, icount, await machine.status())
        await machine.serial_settled()

    # --- the end --------------------------------------------------------------------------

    async def finish(self, ctx) -> str | None:
        """Recording: the guest held where the run ended, and what the recording needs from
        the machine kept. Replaying: the guest run to that same instruction, and the console
        compared byte for byte; returns what differs, or None."""
        machine = ctx.machine
        if not self.replaying:
            end = None
            if ctx.qemu_running():
                try:
                    if await machine.status() == "running":
                        await machine.pause()
                    end = await machine.replay_position()
                except QEMU_GONE:  # the guest shut down meanwhile: so it will on the replay
                    await machine.wait_exit(STALL_SECONDS)
                await machine.serial_settled()
            assert machine.socket_dir is not None
            self._machine = {"argv": machine.argv(), "socket_dir": str(machine.socket_dir), "digests": digests(machine),
                             "hardware": dataclasses.asdict(machine.config), "append": machine.extra_cmdline,
                             "end": end, "serial_size": len(machine.serial_bytes)}
            (self.folder / "serial.bin").write_bytes(bytes(machine.serial_bytes))
            return None
        assert self.recording is not None
        try:
            if self.recording.end is not None and ctx.qemu_running():
                await self._run_to(machine, self.recording.end)
            elif self.recording.end is None:
                await machine.wait_exit(STALL_SECONDS)
        except QEMU_GONE:
            await machine.wait_exit(STALL_SECONDS)
        await machine.serial_settled()
        return serial_difference((self.folder / "serial.bin").read_bytes(), bytes(machine.serial_bytes))

    def saved(self, scenario: model.Scenario, result) -> bool:
        """Recording: writes recording.json with the run's judgement; False when no machine ran."""
        if self._machine is None:
            return False
        assert scenario.path is not None
        shutil.copyfile(scenario.path, self.folder / "scenario.yaml")
        Recording(scenario_path=str(scenario.path), scenario_file=str(scenario.path.resolve()), variant=scenario.variant, steps=self.marks,
                  passed=result.passed, where=result.where, reason=result.reason, log=result.log,
                  seconds=time.monotonic() - self.started, **self._machine).save(self.folder)
        return True


def recording_folder(folder: Path) -> Path:
    """The recording a folder names: an artifact folder's `recording/`, or a recording folder itself."""
    return folder if (folder / "recording.json").exists() else folder / FOLDER


def find(roots: list[Path]) -> list[Path]:
    """The artifact folders under `roots` that hold a recording, sorted."""
    found = {path.parent.parent if path.parent.name == FOLDER else path.parent
             for root in roots if root.is_dir() for path in root.rglob("recording.json")}
    return sorted(found)


def serial_difference(recorded: bytes, replayed: bytes) -> str | None:
    """None when equal, else where they part and how."""
    if recorded == replayed:
        return None
    at = next((i for i, (a, b) in enumerate(zip(recorded, replayed)) if a != b), min(len(recorded), len(replayed)))
    line = recorded.count(b"\n", 0, at) + 1
    return (f"the serial output differs from byte {at} (line {line}; recorded {len(recorded)} bytes, replayed "
            f"{len(replayed)}): recorded {recorded[at:at + 40]!r}, replayed {replayed[at:at + 40]!r}")


def rewound_console(recorded: bytes, since: bytes, before: int) -> int:
    """How much of the recorded console the guest has written after GDB took a debugged replay
    back. Each step back replays from the first instruction (both snapshots are there), once or
    more, so `since` (all the console bytes written meanwhile) ends with the recording's first n
    bytes, n at most `before` (the bytes written before going back). The longest such n: exact
    unless the console repeats its own beginning (a guest that rebooted)."""
    start = max(0, len(since) - before)
    at = since.find(recorded[:1], start) if recorded else -1
    while at != -1:
        if recorded.startswith(since[at:]):
            return len(since) - at
        at = since.find(recorded[:1], at + 1)
    return 0


def scenario_of(folder: Path) -> tuple[model.Scenario, Recording]:
    """The recorded run of the scenario, read from the copy kept in the recording."""
    recording = Recording.load(folder)
    copy = folder / "scenario.yaml"
    runs = model.load(copy)
    chosen = [run for run in runs if run.variant == recording.variant]
    if not chosen:
        raise ReplayError(f"{copy}: no run [{recording.variant}] in the recorded scenario")
    scenario = chosen[0]
    # Named as the original, whose folder its config path is relative to: as the recorded run
    # named it when that still names it from here.
    named = Path(recording.scenario_path)
    path = named if named.resolve() == Path(recording.scenario_file) else Path(recording.scenario_file)
    object.__setattr__(scenario, "path", path)
    return scenario, recording


def judged_alike(recording: Recording, result) -> list[str]:
    """How the replay's judgement differs from the recorded one (timings aside); empty if alike."""
    def same_path(text: str | None) -> str | None:
        return text and text.replace(recording.scenario_file, recording.scenario_path)

    differences = []
    if recording.passed != result.passed:
        differences.append(f"recorded {'PASS' if recording.passed else 'FAIL'}, replayed {'PASS' if result.passed else 'FAIL'}")
    for what in ("where", "reason"):
        if same_path(getattr(recording, what)) != same_path(getattr(result, what)):
            differences.append(f"{what}: recorded {getattr(recording, what)!r}, replayed {getattr(result, what)!r}")
    untimed = lambda log: [re.sub(r" \(\d+\.\d+ s\)$", "", line) for line in log]  # noqa: E731
    for was, now in zip(untimed(recording.log), untimed(result.log)):
        if was != now:
            differences.append(f"step: recorded {was!r}, replayed {now!r}")
    if len(recording.log) != len(result.log):
        differences.append(f"recorded {len(recording.log)} steps, replayed {len(result.log)}")
    return differences


def unrecordable(scenario: model.Scenario, settings) -> list[tuple[int, str]]:
    """(line, why) for each reason this run cannot be recorded: its steps, and its machine."""
    from .scenario.runner import hardware_for  # the runner uses this module

    problems = scenario.unrecordable()
    if hardware_for(scenario, settings).cpu.count > 1:
        problems.append((scenario.line, "its machine has more than one CPU, and QEMU 7.2 records one only "
                                        "(\"Record/replay feature is not supported for 'smp'\")"))
    return problems


def check_recordable(scenario: model.Scenario, settings) -> None:
    problems = unrecordable(scenario, settings)
    if problems:
        raise ConfigError(scenario.path or Path("(python)"), problems[0][0], "steps",
                          "cannot be recorded: " + "; ".join(why for _, why in problems))


# --- under a debugger ----------------------------------------------------------------------

@contextlib.asynccontextmanager
async def debugged(folder: Path, settings, reverse: bool = False, on_note=print, on_serial=None):
    """A recorded run replayed for a debugger, held at its first instruction: yields the
    machine (GDB attaches to `machine.gdb_socket`). The scenario's steps are not run: what
    they gave the guest (keys, the debug port's requests) is in QEMU's log. With `reverse`, the
    machine gets a qcow2 disk (in its private dir) for QEMU's snapshots: one at the start, and
    QEMU's own when GDB attaches, from which GDB's reverse-stepi and reverse-continue replay
    forward (reverse-continue as `gdb_commands` gives it, not QEMU's own). `on_serial` gets the
    console's text as the replay writes it: again from the start
    at each step back (`rewound_console`), as long as GDB attaches at the first instruction,
    where QEMU takes its snapshot."""
    from .scenario.runner import hardware_for  # the runner uses this module

    scenario, recording = scenario_of(folder)
    hardware = hardware_for(scenario, settings)
    if reverse:
        hardware = dataclasses.replace(hardware, snapshots=True)
    tape = Tape(folder, recording)
    with KernelImage(settings.kernel_elf) as image:
        async with Machine(settings, hardware, image, scenario.append, on_serial, **tape.machine_options()) as machine:
            tape.check_machine(machine)
            if reverse:
                await machine.save_snapshot("start")
            watcher = asyncio.create_task(_end_if_hung(machine, on_note))
            try:
                yield machine
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)


def gdb_commands(machine: Machine) -> list[str]:
    """GDB commands that give a GDB on `machine`, a replay with snapshots, the workbench's
    `reverse-continue` (workbench/gdb_reverse.py) in place of QEMU's, which deadlocks on a
    loaded host. It speaks QMP on the machine's second monitor, through this workbench's driver."""
    paths = [str(Path(__file__).parent.parent), sysconfig.get_paths()["purelib"]]  # this package, its environment
    return [f"python import sys; sys.path += {paths!r}; from workbench.gdb_reverse import install; "
            f"install({str(machine.attach_socket)!r})"]


def _cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used, from /proc/PID/stat (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _end_if_hung(machine: Machine, on_note) -> None:
    """Ends QEMU once it has answered no QMP command for HUNG_SECONDS and used no CPU meanwhile.
    QEMU 7.2 does that in its own reverse-continue on a loaded host (loading its snapshot, the
    main thread resets the CPU and waits for the vCPU thread, which waits for the replay lock the
    main thread holds): the workbench's GDBs use their own (`gdb_commands`), but a GDB attached
    by hand may not. GDB would wait for a stop forever; with QEMU ended, its wait fails at once
    (`gdb.TargetGone`) and the note says why. A QEMU busy loading a snapshot is not hung."""
    process = machine.process
    try:
        while process is not None and process.returncode is None:
            ran = _cpu_seconds(process.pid)
            try:
                await machine.status(timeout=HUNG_SECONDS)
            except asyncio.TimeoutError:
                if process.returncode is None and _cpu_seconds(process.pid) - ran < 0.5:
                    on_note(f"kwast-bench: QEMU answered nothing for {HUNG_SECONDS} s and ran nothing: hung "
                            "(QEMU 7.2 can deadlock in its own reverse-continue on a loaded host; "
                            "see README, Recording a run). "
                            "Ended it: open the recording again")
                    process.kill()
                    return
            await asyncio.sleep(1)
    except (OSError, *QEMU_GONE):
        return  # QEMU ended by itself
