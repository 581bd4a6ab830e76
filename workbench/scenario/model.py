"""The scenario format (`scenarios/*.yaml`): a machine and the ordered steps to run on it.

Every step kind is a dataclass with a `TAG` (its YAML key); `yamlmodel` decodes the `steps`
list as a tagged union, so a mistake names file, line and field like a config mistake does.
Strings in steps may use `${name}` for a value an earlier step captured or saved, or one of the
file's `matrix:` (workbench/scenario/matrix.py: one file, a run per combination).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal

from .. import yamlmodel
from . import matrix
from ..config import HardwareConfig
from ..qemu import keys
from ..yamlmodel import ConfigError, check, parser

Overrides = yamlmodel.partial(HardwareConfig)


def _regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


_REGEX = check(_regex, "not a valid regular expression")


def _regexes(patterns: list[str]) -> bool:
    """At least one, each valid, and no group name in two of them: each match's groups become
    variables, so a name in two would silently keep the later match's value."""
    if not patterns or not all(_regex(p) for p in patterns):
        return False
    names = [name for p in patterns for name in re.compile(p).groupindex]
    return len(names) == len(set(names))


_REGEXES = check(_regexes, "must be a list of valid regular expressions, at least one, no group name in two of them")
_POSITIVE = check(lambda n: n > 0, "must be more than 0")
# Numbers compared after ${name} substitution: written as numbers or strings in YAML.
_TEXT = parser(str)
_NAME = check(lambda s: re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", s) is not None,
              "must be a name (letters, digits, _), usable later as ${name}")


def _at(line: int) -> Any:
    return field(default=line, init=False, compare=False)


@dataclass(frozen=True)
class Boot:
    """Lets the held CPU run (the machine's resume, or GDB's continue when GDB is attached)."""
    TAG: ClassVar[str] = "boot"
    line: int = _at(0)


@dataclass(frozen=True)
class Expect:
    """Waits for a serial-console match after the previous match; named groups become variables."""
    TAG: ClassVar[str] = "expect"
    SHORTHAND: ClassVar[str] = "pattern"
    pattern: str = field(metadata=_REGEX)
    timeout: float = field(default=10.0, metadata=_POSITIVE)
    line: int = _at(0)


@dataclass(frozen=True)
class ExpectAll:
    """Waits until each pattern matches after the previous match, in any order: lines whose order
    the scheduler decides (two servers reacting to one event). The next match is searched after
    the last of them; named groups become variables."""
    TAG: ClassVar[str] = "expect_all"
    SHORTHAND: ClassVar[str] = "patterns"
    patterns: list[str] = field(metadata=_REGEXES)
    timeout: float = field(default=10.0, metadata=_POSITIVE)
    line: int = _at(0)


@dataclass(frozen=True)
class Reject:
    """No serial-console line so far (from the first boot on) may match: what must not happen,
    such as a restart, checked once the run has got to where it would have shown."""
    TAG: ClassVar[str] = "reject"
    SHORTHAND: ClassVar[str] = "pattern"
    pattern: str = field(metadata=_REGEX)
    line: int = _at(0)


@dataclass(frozen=True)
class SendKeys:
    """Types `text`, then presses `keys` (QMP qcodes such as ret, esc, ctrl-c, shift-a)."""
    TAG: ClassVar[str] = "send_keys"
    SHORTHAND: ClassVar[str] = "text"
    text: str = ""
    keys: list[str] = field(default_factory=list)
    line: int = _at(0)

    def __post_init__(self) -> None:
        if not self.text and not self.keys:
            raise ValueError("give `text`, `keys` or both")
        keys.for_text(self.text)  # a character a US keyboard cannot type is an error here, not at run time


@dataclass(frozen=True)
class ThreadIs:
    name: str
    state: str | None = None  # Ready, Running, Blocked, Sleeping, Dead; None: exists
    waits: str | None = field(default=None, metadata=_REGEX)  # on what it waits, in words: "receive", "reply from console"
    cpu: int | None = None    # the CPU it runs on (or last ran on)


@dataclass(frozen=True)
class ServerIs:
    """A server's row (workbench/state_words.py `Server`); every field given must hold."""
    name: str
    state: str | None = None             # running, exited, killed
    restarts: int | None = None
    restarts_at_least: int | None = None
    memory_at_least: int | None = None   # linear memory, bytes
    reason: str | None = field(default=None, metadata=_REGEX)  # its last kill reason


@dataclass(frozen=True)
class EndpointIs:
    """An endpoint's row by name (`Endpoint`): totals since it was made."""
    name: str
    calls_at_least: int | None = None
    replies_at_least: int | None = None
    errors: int | None = None
    receivers: int | None = None         # threads waiting in receive on it now


@dataclass(frozen=True)
class State:
    """Predicates over the live kernel debug state (workbench/state.py); all must hold.
    `thread`, `server`, `endpoint` and `value` are polled until true or `timeout`."""
    TAG: ClassVar[str] = "state"
    thread: ThreadIs | None = None
    server: ServerIs | None = None
    endpoint: EndpointIs | None = None
    rising: str | None = None          # a field path, e.g. cpus[0].ticks: must grow over `over` s
    steady: str | None = None          # a field path that must not change over `over` s
    over: float = field(default=0.5, metadata=_POSITIVE)
    no_traps: bool = False             # no Trap event in the kernel's event ring
    cpus_online: int | None = None     # CPUs the kernel runs threads on
    value: str | None = None           # a field path, compared and/or saved
    equals: str | None = field(default=None, metadata=_TEXT)
    at_least: str | None = field(default=None, metadata=_TEXT)
    at_most: str | None = field(default=None, metadata=_TEXT)
    save_as: str | None = field(default=None, metadata=_NAME)
    fails_with: str | None = field(default=None, metadata=_REGEX)  # reading the state must fail so
    timeout: float = field(default=5.0, metadata=_POSITIVE)
    line: int = _at(0)

    def __post_init__(self) -> None:
        if (self.equals or self.at_least or self.at_most or self.save_as) and not self.value:
            raise ValueError("equals, at_least, at_most and save_as need `value` (a field path)")
        if not (self.thread or self.server or self.endpoint or self.rising or self.steady or self.no_traps
                or self.value or self.fails_with or self.cpus_online is not None):
            raise ValueError("give a predicate: thread, server, endpoint, rising, steady, no_traps, cpus_online, value "
                             "or fails_with")


@dataclass(frozen=True)
class Compare:
    """A number, usually a captured `${name}`, checked against bounds (numbers or `${name}`s too);
    all given must hold."""
    TAG: ClassVar[str] = "compare"
    value: str = field(metadata=_TEXT)
    equals: str | None = field(default=None, metadata=_TEXT)
    at_least: str | None = field(default=None, metadata=_TEXT)
    at_most: str | None = field(default=None, metadata=_TEXT)
    line: int = _at(0)

    def __post_init__(self) -> None:
        if self.equals is None and self.at_least is None and self.at_most is None:
            raise ValueError("give a bound: equals, at_least or at_most")


@dataclass(frozen=True)
class Gdb:
    """One GDB action on the kernel (GDB attaches on first use, which stops the guest)."""
    TAG: ClassVar[str] = "gdb"
    break_: str | None = None          # a breakpoint at a symbol or file:line
    continue_: bool = False            # resume the guest under GDB
    expect_stop: str | None = field(default=None, metadata=_REGEX)  # regex on the function it stops in
    print: str | None = None           # an expression's value
    command: str | None = None         # a GDB CLI command; its output is checked like `print`
    detach: bool = False               # leave GDB; the guest runs on
    equals: str | None = field(default=None, metadata=_TEXT)
    matches: str | None = field(default=None, metadata=_REGEX)
    save_as: str | None = field(default=None, metadata=_NAME)
    timeout: float = field(default=30.0, metadata=_POSITIVE)
    line: int = _at(0)

    ACTIONS: ClassVar[tuple[str, ...]] = ("break_", "continue_", "expect_stop", "print", "command", "detach")

    def __post_init__(self) -> None:
        given = [a.rstrip("_") for a in self.ACTIONS if getattr(self, a)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of break, continue, expect_stop, print, command, detach "
                             f"(got {', '.join(given) or 'none'})")
        if (self.equals or self.matches or self.save_as) and not (self.print or self.command):
            raise ValueError("equals, matches and save_as need `print` or `command`")


@dataclass(frozen=True)
class Inject:
    """Disturbs the machine: pause/resume, an NMI, bytes written over guest
    memory at a kernel symbol (through GDB), a server killed or the next IPC message corrupted
    (the kernel's debug-control block, through GDB), or a storm of keyboard interrupts."""
    TAG: ClassVar[str] = "inject"
    SHORTHAND: ClassVar[str] = "action"
    action: Literal["pause", "resume", "nmi", "corrupt", "kill", "irq_storm", "corrupt_message"]
    symbol: str | None = None
    offset: int = 0
    bytes: str | None = field(default=None, metadata=check(
        lambda s: re.fullmatch(r"([0-9a-fA-F]{2})+", s) is not None, "must be hex bytes, e.g. 00ff"))
    server: str | None = None
    count: int = field(default=500, metadata=check(lambda n: 1 <= n <= 100000, "must be between 1 and 100000"))
    line: int = _at(0)

    def __post_init__(self) -> None:
        if self.action == "corrupt" and not (self.symbol and self.bytes):
            raise ValueError("corrupt needs `symbol` and `bytes`")
        if self.action != "corrupt" and (self.symbol or self.bytes):
            raise ValueError("symbol and bytes belong to action: corrupt")
        if (self.action == "kill") != (self.server is not None):
            raise ValueError("kill needs `server` (the server's name), and only kill takes one")


@dataclass(frozen=True)
class Screendump:
    """Saves the display as PPM in the artifact folder (needs `display: vga`). With `shows`, the
    VGA text buffer must match that regex and the picture must show the buffer's text."""
    TAG: ClassVar[str] = "screendump"
    SHORTHAND: ClassVar[str] = "file"
    file: str = field(default="screen.ppm", metadata=check(
        lambda s: re.fullmatch(r"[\w.-]+\.ppm", s) is not None, "must be a file name ending in .ppm"))
    width: int | None = None
    height: int | None = None
    shows: str | None = field(default=None, metadata=_REGEX)
    line: int = _at(0)


@dataclass(frozen=True)
class Snapshot:
    """Saves the whole VM (devices and RAM) into the scenario's qcow2 overlay."""
    TAG: ClassVar[str] = "snapshot"
    SHORTHAND: ClassVar[str] = "name"
    name: str = field(default="snap", metadata=_NAME)
    line: int = _at(0)


@dataclass(frozen=True)
class Restore:
    """Goes back to a snapshot taken earlier in this scenario."""
    TAG: ClassVar[str] = "restore"
    SHORTHAND: ClassVar[str] = "name"
    name: str = field(default="snap", metadata=_NAME)
    line: int = _at(0)


@dataclass(frozen=True)
class ExpectExit:
    """Waits for QEMU to end and checks how: success/failure (isa-debug-exit), reset, exited."""
    TAG: ClassVar[str] = "expect_exit"
    SHORTHAND: ClassVar[str] = "status"
    status: Literal["success", "failure", "reset", "exited"] = "success"
    code: int | None = None            # QEMU's exit status, when it matters
    timeout: float = field(default=30.0, metadata=_POSITIVE)
    line: int = _at(0)


_JSON_FILE = check(lambda s: re.fullmatch(r"[\w.-]+\.json", s) is not None, "must be a file name ending in .json")


@dataclass(frozen=True)
class Trace:
    """Drains the kernel's event ring for `seconds` while the guest runs, into a Perfetto trace
    in the artifact folder (`out`, its summary beside it; `kwast-bench trace`). Fails if events
    were lost."""
    TAG: ClassVar[str] = "trace"
    seconds: float = field(default=5.0, metadata=_POSITIVE)
    out: str = field(default="trace.json", metadata=_JSON_FILE)
    line: int = _at(0)


@dataclass(frozen=True)
class Profile:
    """Every guest instruction between the end of the console line matching `from` and the end
    of the next matching `to`, by call stack (`kwast-bench profile`), into the folder `out` of
    the artifacts. The scenario's machine then logs every block it runs (`-d exec`): slow."""
    TAG: ClassVar[str] = "profile"
    from_: str = field(metadata=_REGEX)
    to: str = field(metadata=_REGEX)
    out: str = field(default="profile", metadata=check(lambda s: re.fullmatch(r"[\w.-]+", s) is not None,
                                                       "must be a folder name"))
    timeout: float = field(default=60.0, metadata=_POSITIVE)
    line: int = _at(0)


@dataclass(frozen=True)
class Call:
    """Python only (fixtures): `function(context)`, sync or async, for what YAML cannot say."""
    TAG: ClassVar[str] = "call"
    function: Callable[..., Any]
    label: str = ""
    line: int = _at(0)


Step = (Boot | Expect | ExpectAll | Reject | SendKeys | State | Compare | Gdb | Inject | Screendump | Snapshot | Restore
        | ExpectExit | Trace | Profile)
STEP_KINDS = [Boot, Expect, ExpectAll, Reject, SendKeys, State, Compare, Gdb, Inject, Screendump, Snapshot, Restore, ExpectExit,
              Trace, Profile]


@dataclass(frozen=True)
class Scenario:
    name: str
    config: str                        # relative to the scenario file, else to the repository root
    steps: list[Step] = field(default_factory=list)
    description: str = ""
    overrides: Overrides | None = None  # any hardware-config fields: memory, cpu, servers, cmdline, ...
    append: str = ""                   # kernel command-line words after the config's
    timeout: float = field(default=120.0, metadata=_POSITIVE)  # the whole scenario
    expect_error: str | None = field(default=None, metadata=_REGEX)  # it must fail, with this text
    record: bool = False               # record every run, to replay it (workbench/replay.py)
    path: Path | None = field(default=None, init=False, compare=False)
    variant: str = field(default="", init=False, compare=False)  # the matrix combination's name
    line: int = _at(1)

    def __post_init__(self) -> None:
        if not self.steps and not self.expect_error:
            raise ValueError("missing steps (or expect_error, for a scenario that must fail)")
        saved: set[str] = set()
        for step in self.steps:
            if isinstance(step, Snapshot):
                saved.add(step.name)
            elif isinstance(step, Restore) and step.name not in saved:
                raise ValueError(f"steps: restore {step.name!r} (line {step.line}) comes before any snapshot of that name")
        if self.record and self.unrecordable():
            raise ValueError("record: true, but " + "; ".join(f"line {line}: {why}" for line, why in self.unrecordable()))

    def unrecordable(self) -> list[tuple[int, str]]:
        """(line, what and why) for each step a replay could not reproduce: named when a
        scenario is loaded to be recorded, before any QEMU starts."""
        found = []
        for index, step in enumerate(self.steps, 1):
            why = None
            if isinstance(step, Restore):
                why = "a snapshot restore takes the guest back outside QEMU's log of its inputs"
            elif isinstance(step, Inject) and step.action == "nmi":
                why = "an NMI from QMP reaches the CPU without passing through QEMU's log"
            elif isinstance(step, Call):
                why = "a Python step cannot be run again from a recording"
            if why:
                found.append((step.line, f"step {index} ({describe(step)}) cannot be recorded: {why}"))
        return found

    @property
    def needs_snapshots(self) -> bool:
        return any(isinstance(step, (Snapshot, Restore)) for step in self.steps)

    @property
    def label(self) -> str:
        """`faults[div_zero]`: the file's stem, with the combination for a matrix run (pytest
        item, JUnit case, TUI row)."""
        assert self.path is not None
        return f"{self.path.stem}[{self.variant}]" if self.variant else self.path.stem


@dataclass(frozen=True)
class Unloadable:
    """A scenario file with a mistake: it is listed and run like the others, and running it
    reports the mistake as a setup failure."""
    path: Path
    error: ConfigError

    @property
    def label(self) -> str:
        return self.path.stem


def load(path: Path | str) -> list[Scenario]:
    """Every run a scenario file describes: the scenario, or one per combination of its
    `matrix:`, named `name [combination]`."""
    path = Path(path)
    document = yamlmodel.compose(path)
    values = matrix.take(path, document)
    combinations = [matrix.NONE] if values is None else matrix.combinations(path, values)
    runs, used = [], set()
    for combination in combinations:
        try:
            scenario = yamlmodel.decode(path, matrix.substitute(path, document, combination, used), Scenario)
            _check_variables(path, scenario, combination)
        except ConfigError as error:
            if not combination.name:
                raise
            raise ConfigError(path, error.line, error.field,
                              f"{error.message} (in the matrix run {combination.name})") from None
        object.__setattr__(scenario, "path", path)
        if combination.name:
            object.__setattr__(scenario, "variant", combination.name)
            object.__setattr__(scenario, "name", f"{scenario.name} [{combination.name}]")
        runs.append(scenario)
    if values is not None:
        matrix.check_used(path, values, used)
    return runs


def _check_variables(path: Path, scenario: Scenario, combination: matrix.Combination) -> None:
    """Every `${name}` left in a step after the matrix's values went in must be one an earlier
    step captures (a named group of `expect`) or saves (`save_as`): a typo fails here, not at run time."""
    known: set[str] = set()
    for index, step in enumerate(scenario.steps):
        for field_name, text in _texts(step):
            for name in matrix.VARIABLE.findall(text):
                if name not in known:
                    listed = ", ".join(sorted(known | set(combination.values))) or "none"
                    raise ConfigError(path, step.line, f"steps[{index}].{step.TAG}.{field_name.rstrip('_')}",
                                      f"unknown variable ${{{name}}} (known here: {listed}; names come from "
                                      f"matrix:, a named group of an earlier expect, or an earlier save_as)")
        patterns = [step.pattern] if isinstance(step, Expect) else step.patterns if isinstance(step, ExpectAll) else []
        saved = {name for pattern in patterns for name in re.compile(pattern).groupindex}
        saved |= {getattr(step, "save_as", None)} - {None}
        clash = saved & set(combination.values)
        if clash:
            raise ConfigError(path, step.line, f"steps[{index}].{step.TAG}",
                              f"saves {', '.join(sorted(clash))}, a name the matrix gives: use another")
        known |= saved


def _texts(value: Any, prefix: str = ""):
    """(field path, text) for every string in a step, nested fields included."""
    for spec in dataclasses.fields(value):
        item = getattr(value, spec.name)
        name = f"{prefix}{spec.name}"
        if isinstance(item, str):
            yield name, item
        elif isinstance(item, list):
            yield from ((f"{name}[{i}]", text) for i, text in enumerate(item) if isinstance(text, str))
        elif dataclasses.is_dataclass(item):
            yield from _texts(item, f"{name}.")


def config_path(scenario: Scenario, root: Path) -> Path:
    """The hardware config a scenario names: beside the scenario file first, then the repository root."""
    assert scenario.path is not None
    tried = [scenario.path.parent / scenario.config, root / scenario.config]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    line = next((i for i, text in enumerate(scenario.path.read_text().splitlines(), 1)
                 if text.startswith("config:")), 1)
    raise ConfigError(scenario.path, line, "config",
                      f"no such file: tried {', '.join(str(t) for t in tried)} (paths are relative to the "
                      f"scenario file or the repository root)")


def describe(step: Any) -> str:
    """`expect 'Kwast booting'` and the like: a step as a report names it."""
    shown = {f.name: getattr(step, f.name) for f in dataclasses.fields(step)
             if f.init and getattr(step, f.name) not in (None, False, "", [], f.default)}
    if isinstance(step, Call):
        return f"call {step.label or getattr(step.function, '__name__', 'function')}"
    return (f"{step.TAG} " + ", ".join(f"{k.rstrip('_')}={v!r}" for k, v in shown.items())).rstrip()
