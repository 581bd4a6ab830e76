"""The scenario format: every shipped scenario loads; steps decode as a tagged union; every
mistake names file, line and field; overrides merge into the hardware config."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from conftest import SETTINGS
from workbench import config
from workbench.scenario import model, runner, steps
from workbench.scenario.steps import StepFailed, substitute
from workbench.yamlmodel import ConfigError

SCENARIOS = runner.discover([SETTINGS.scenarios_dir])


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_shipped_scenarios_load_and_name_their_config(path):
    scenario = model.load(path)
    assert scenario.path == path and scenario.name
    if not scenario.expect_error:
        runner.hardware_for(scenario, SETTINGS)  # the config exists and the overrides apply


def test_configs_beside_scenarios_are_not_scenarios():
    assert SCENARIOS and not any("configs" in p.relative_to(SETTINGS.scenarios_dir).parts for p in SCENARIOS)


def test_every_step_form(tmp_path):
    path = write(tmp_path, """\
name: all kinds
config: configs/default.yaml
steps:
  - boot
  - expect: "Kwast (?P<version>\\\\S+)"
  - expect: {pattern: holding, timeout: 5}
  - reject: "restarting|killed"
  - send_keys: {text: "Hi!", keys: [ret, ctrl-c]}
  - state: {thread: {name: idle, state: Running}, timeout: 2}
  - state: {value: "cpus[0].ticks", at_least: 1, save_as: t}
  - compare: {value: "${t}", at_least: 1, at_most: 99999}
  - gdb: {break: kmain}
  - gdb: {print: ms, equals: 1000}
  - inject: pause
  - inject: {action: corrupt, symbol: KWAST_DEBUG_STATE, offset: 8, bytes: "00ff"}
  - screendump
  - screendump: {file: text.ppm, shows: "^SeaBIOS"}
  - snapshot: s1
  - restore: s1
  - expect_exit: {status: failure, code: 3}
""")
    scenario = model.load(path)
    kinds = [type(s) for s in scenario.steps]
    assert kinds == [model.Boot, model.Expect, model.Expect, model.Reject, model.SendKeys, model.State, model.State,
                     model.Compare, model.Gdb, model.Gdb, model.Inject, model.Inject, model.Screendump,
                     model.Screendump, model.Snapshot, model.Restore, model.ExpectExit]
    assert [s.line for s in scenario.steps] == list(range(4, 21))
    assert scenario.steps[1].pattern == "Kwast (?P<version>\\S+)" and scenario.steps[1].timeout == 10
    assert scenario.steps[3].pattern == "restarting|killed"
    assert scenario.steps[6].at_least == "1"          # numbers kept as text until ${...} is filled in
    assert scenario.steps[7] == model.Compare(value="${t}", at_least="1", at_most="99999")
    assert scenario.steps[8].break_ == "kmain"         # `break` is a Python keyword
    assert scenario.steps[11].offset == 8 and scenario.steps[11].bytes == "00ff"
    assert scenario.steps[12].file == "screen.ppm" and scenario.steps[12].shows is None
    assert scenario.steps[13].shows == "^SeaBIOS"
    assert scenario.steps[16] == model.ExpectExit(status="failure", code=3)
    assert scenario.needs_snapshots


@pytest.mark.parametrize("steps,line,message", [
    ("  - bot\n", 4, "steps[0]: expected one of: boot, expect"),
    ("  - wait: 3\n", 4, "steps[0]: unknown kind 'wait' (known: boot, expect, reject, send_keys"),
    ("  - expect: x\n    timeout: 3\n", 4, "steps[0]: expected one key naming the kind (boot, expect, "),
    ("  - boot\n  - expect: {pattern: '(', timeout: 3}\n", 5, "steps[1].expect.pattern: not a valid regular expression"),
    ("  - expect: {pattern: x, timeout: -1}\n", 4, "steps[0].expect.timeout: must be more than 0"),
    ("  - expect: {patern: x}\n", 4, "steps[0].expect.patern: unknown key (known keys: pattern, timeout)"),
    ("  - expect\n", 4, "steps[0].expect: missing required key: pattern"),
    ("  - gdb: {break: kmain, continue: true}\n", 4, "steps[0].gdb: give exactly one of break, continue"),
    ("  - gdb: {break: kmain, equals: 1}\n", 4, "equals, matches and save_as need `print` or `command`"),
    ("  - inject: explode\n", 4, "steps[0].inject.action: 'explode' is not one of 'pause' or 'resume'"),
    ("  - inject: corrupt\n", 4, "steps[0].inject: corrupt needs `symbol` and `bytes`"),
    ("  - inject: {action: corrupt, symbol: x, bytes: zz}\n", 4, "steps[0].inject.bytes: must be hex bytes"),
    ("  - state: {}\n", 4, "steps[0].state: give a predicate"),
    ("  - state: {equals: 3}\n", 4, "equals, at_least, at_most and save_as need `value`"),
    ("  - state: {value: x, save_as: 3x}\n", 4, "steps[0].state.save_as: must be a name"),
    ("  - send_keys: {}\n", 4, "steps[0].send_keys: give `text`, `keys` or both"),
    ("  - send_keys: 'é'\n", 4, "cannot type 'é' on a US keyboard"),
    ("  - screendump: shot.png\n", 4, "steps[0].screendump.file: must be a file name ending in .ppm"),
    ("  - screendump: {shows: '('}\n", 4, "steps[0].screendump.shows: not a valid regular expression"),
    ("  - compare: {value: 3}\n", 4, "steps[0].compare: give a bound: equals, at_least or at_most"),
    ("  - boot\n  - restore: s1\n", 1, "steps: restore 's1' (line 5) comes before any snapshot"),
    ("  - expect_exit: crashed\n", 4, "'crashed' is not one of 'success' or 'failure'"),
])
def test_step_mistakes_name_file_line_and_field(tmp_path, steps, line, message):
    path = write(tmp_path, "name: x\nconfig: configs/default.yaml\nsteps:\n" + steps)
    with pytest.raises(ConfigError) as caught:
        model.load(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)


@pytest.mark.parametrize("text,line,message", [
    ("config: c.yaml\nsteps: [boot]\n", 1, "(top level): missing required key: name"),
    ("name: x\nconfig: c.yaml\n", 1, "missing steps (or expect_error"),
    ("name: x\nconfig: c.yaml\ntimeout: 0\nsteps: [boot]\n", 3, "timeout: must be more than 0"),
    ("name: x\nconfig: c.yaml\noverrides:\n  cpu: {count: 99}\nsteps: [boot]\n", 4, "overrides.cpu.count: must be between 1 and 64"),
    ("name: x\nconfig: c.yaml\noverrides:\n  memory: lots\nsteps: [boot]\n", 4, "overrides.memory: 'lots' is not a size"),
    ("name: x\nconfig: c.yaml\noverrides: {colour: red}\nsteps: [boot]\n", 3, "overrides.colour: unknown key"),
    ("name: x\nconfig: c.yaml\nsteps: boot\n", 3, "steps: expected a list of one of: boot, expect"),
])
def test_scenario_mistakes_name_file_line_and_field(tmp_path, text, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        model.load(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)


def test_overrides_replace_only_what_they_name(tmp_path):
    path = write(tmp_path, "name: x\nconfig: configs/smp2-vga.yaml\noverrides:\n  memory: 64M\n  cpu: {count: 1}\n"
                           "  cmdline: test=heap\n  servers: []\nsteps: [boot]\n")
    hardware = runner.hardware_for(model.load(path), SETTINGS)
    base = config.load(SETTINGS.root / "configs/smp2-vga.yaml")
    assert hardware == dataclasses.replace(base, memory=64 << 20, cpu=config.Cpu(model="Haswell", count=1),
                                           cmdline="test=heap", servers=[])


def test_config_path_beside_the_scenario_then_the_repository(tmp_path):
    (tmp_path / "mine.yaml").write_text("memory: 32M\n")
    beside = model.load(write(tmp_path, "name: x\nconfig: mine.yaml\nsteps: [boot]\n"))
    assert runner.hardware_for(beside, SETTINGS).memory == 32 << 20
    missing = model.load(write(tmp_path, "name: x\nsteps: [boot]\nconfig: nope.yaml\n", "m.yaml"))
    with pytest.raises(ConfigError, match=r"m\.yaml:3: config: no such file: tried .*nope\.yaml, .*relative to the scenario"):
        runner.hardware_for(missing, SETTINGS)


def test_variables_are_substituted_and_unknown_ones_are_named():
    step = model.State(value="threads[${who}].run_ticks", at_most="${t}")
    assert substitute(step, {"who": "idle", "t": "42"}) == model.State(value="threads[idle].run_ticks", at_most="42")
    with pytest.raises(StepFailed, match=r"unknown variable \$\{t\} \(defined so far: who\)"):
        substitute(step, {"who": "idle"})


def test_compare_holds_a_figure_to_its_bounds():
    def compare(**fields) -> str:
        return asyncio.run(steps.compare(None, model.Compare(**fields)))

    assert compare(value="11637", at_least="2408", at_most="13000") == "11637: >= 2408, <= 13000"
    with pytest.raises(StepFailed, match=r"^the value is 14000, expected <= 13000$"):
        compare(value="14000", at_least="2408", at_most="13000")
    with pytest.raises(StepFailed, match=r"^the value is 2000, expected >= 2408$"):
        compare(value="2000", at_least="2408")
    with pytest.raises(StepFailed, match=r"^value 'n/a' is not a number$"):
        compare(value="n/a", at_most="1")
