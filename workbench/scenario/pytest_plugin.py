"""pytest integration (registered as the `kwast_scenarios` pytest11 plugin): every scenario YAML
under a `scenarios/` directory (not in its `configs/`) is one test item, or one per combination
of its `matrix:` (`faults.yaml::faults[div_zero]`, the JUnit case name too), and a failure shows the
runner's report: the failing step with file:line and why, the last serial lines, the kernel
state. The `kwast_scenario` fixture runs the same steps written in Python. JUnit XML comes from
pytest's own `--junitxml`.

A failed scenario is run once more, recorded (workbench/replay.py), and the report says where
the recording is and whether the failure came again: CI keeps recordings of failures only, and
a passing run costs nothing (README: "A CI failure, replayed"). A passing `record: true` run's
recording is deleted likewise."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from .. import build, settings as settings_module
from .. import replay
from . import model, runner


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--scenario-artifacts", type=Path, metavar="DIR",
                     help="scenario artifact folders go here (default: under pytest's temporary directory)")


def pytest_sessionstart(session: pytest.Session) -> None:
    # Build once, in the controller, when this is a Kwast checkout; xdist workers share it.
    if hasattr(session.config, "workerinput"):
        return
    try:
        settings = settings_module.load(session.config.rootpath)
    except settings_module.SettingsError:
        return
    if not any(_wants_scenarios(Path(arg), settings) for arg in session.config.args):
        return
    try:
        build.build_all(settings)
    except build.BuildError as error:
        pytest.exit(f"{error}\n" + "\n".join(error.output[-60:]), returncode=1)


def _wants_scenarios(arg: Path, settings) -> bool:
    path = (arg if arg.is_absolute() else Path.cwd() / arg.as_posix().split("::")[0]).resolve()
    scenarios = settings.scenarios_dir.resolve()
    return path == scenarios or scenarios in path.parents or path in scenarios.parents


def _settings(path: Path, config: pytest.Config):
    """The Kwast checkout the scenario is in, else the one pytest runs in."""
    for start in (path.parent, config.rootpath):
        try:
            return settings_module.load(start)
        except settings_module.SettingsError:
            pass
    return settings_module.load()


def is_scenario_file(path: Path) -> bool:
    if path.suffix not in (".yaml", ".yml") or "scenarios" not in path.parts[:-1]:
        return False
    parts = path.parts
    last = len(parts) - 1 - parts[::-1].index("scenarios")
    return "configs" not in parts[last + 1:-1]


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if is_scenario_file(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    def collect(self):
        for run in runner.load_all([self.path]):
            yield ScenarioItem.from_parent(self, name=run.label, scenario=run)


class ScenarioFailed(Exception):
    def __init__(self, result: runner.Result, recorded: runner.Result | None):
        super().__init__(result.reason)
        self.result, self.recorded = result, recorded

    def report(self) -> str:
        text = self.result.report()
        if self.recorded is None or self.recorded.recording is None:
            return text
        again = ("it failed again" if not self.recorded.passed
                 else "it PASSED this time: the failure depends on timing; the recording shows the passing run")
        return f"{text}\nre-run with recording: {again}\n  kwast-bench replay {self.recorded.artifacts}"


def recorded_rerun(scenario: runner.Run, settings, folder: Path, result: runner.Result) -> runner.Result | None:
    """A failed run once more, recorded, unless it was recorded already or cannot be."""
    if result.recording is not None:
        return result
    if not isinstance(scenario, model.Scenario) or result.where == "setup" or replay.unrecordable(scenario, settings):
        return None
    return asyncio.run(runner.run(scenario, settings, folder.with_name(folder.name + ".recorded"), record=True))


def artifacts_root(config: pytest.Config) -> Path:
    chosen = config.getoption("scenario_artifacts")
    if chosen:
        return chosen
    # Per session and numbered by pytest: parallel or concurrent runs never share a folder.
    return config._tmp_path_factory.getbasetemp() / "scenarios"  # type: ignore[attr-defined]


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: runner.Run, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        settings = _settings(self.path, self.config)
        [folder] = runner.artifact_dirs([self.scenario], artifacts_root(self.config))
        result = asyncio.run(runner.run(self.scenario, settings, folder))
        self.user_properties.append(("artifacts", str(result.artifacts)))
        assert_no_children_left()
        if result.passed:
            if result.recording is not None:
                shutil.rmtree(result.recording)
            return
        recorded = recorded_rerun(self.scenario, settings, folder, result)
        assert_no_children_left()
        raise ScenarioFailed(result, recorded)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.report()
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, 0, f"scenario {self.name}"


def assert_no_children_left() -> None:
    """No QEMU or GDB started by this process may outlive its scenario."""
    me, left = str(os.getpid()), []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                name, ppid = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()[1]
                if ppid == me and (name.startswith("qemu-system") or name == "gdb"):
                    left.append(f"{name} (pid {entry.name})")
        except OSError:
            continue
    assert not left, f"outlived the scenario: {', '.join(left)}"


@pytest.fixture
def kwast_scenario(request: pytest.FixtureRequest):
    """Runs steps written in Python (model.Boot(), model.Expect("..."), model.Call(function), ...)
    like a YAML scenario; fails the test with the runner's report unless `must_pass=False`.
    Returns the `runner.Result`."""
    settings = _settings(Path(request.path), request.config)

    def run(*steps, config: str = "configs/default.yaml", overrides: dict | None = None, append: str = "",
            timeout: float = 120, must_pass: bool = True) -> runner.Result:
        scenario = model.Scenario(name=request.node.name, config=config, steps=list(steps),
                                  overrides=model.Overrides(**overrides) if overrides else None,
                                  append=append, timeout=timeout)
        object.__setattr__(scenario, "path", Path(request.path))  # configs resolve beside the test too
        folder = artifacts_root(request.config) / request.node.name.replace("/", "_")
        result = asyncio.run(runner.run(scenario, settings, folder))
        if must_pass and not result.passed:
            pytest.fail(result.report(), pytrace=False)
        return result

    return run
