"""The scenario format: every shipped scenario loads; steps decode as a tagged union; every
mistake names file, line and field; overrides merge into the hardware config; a matrix makes a
named run per combination."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
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
    for scenario in model.load(path):
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
  - trace: {seconds: 2, out: keys.json}
  - profile: {from: "^a", to: "^b"}
""")
    [scenario] = model.load(path)
    kinds = [type(s) for s in scenario.steps]
    assert kinds == [model.Boot, model.Expect, model.Expect, model.Reject, model.SendKeys, model.State, model.State,
                     model.Compare, model.Gdb, model.Gdb, model.Inject, model.Inject, model.Screendump,
                     model.Screendump, model.Snapshot, model.Restore, model.ExpectExit, model.Trace, model.Profile]
    assert [s.line for s in scenario.steps] == list(range(4, 23))
    assert scenario.steps[1].pattern == "Kwast (?P<version>\\S+)" and scenario.steps[1].timeout == 10
    assert scenario.steps[3].pattern == "restarting|killed"
    assert scenario.steps[6].at_least == "1"          # numbers kept as text until ${...} is filled in
    assert scenario.steps[7] == model.Compare(value="${t}", at_least="1", at_most="99999")
    assert scenario.steps[8].break_ == "kmain"         # `break` is a Python keyword
    assert scenario.steps[11].offset == 8 and scenario.steps[11].bytes == "00ff"
    assert scenario.steps[12].file == "screen.ppm" and scenario.steps[12].shows is None
    assert scenario.steps[13].shows == "^SeaBIOS"
    assert scenario.steps[16] == model.ExpectExit(status="failure", code=3)
    assert scenario.steps[17] == model.Trace(seconds=2, out="keys.json")
    assert scenario.steps[18] == model.Profile(from_="^a", to="^b", out="profile")  # `from` is a Python keyword
    assert scenario.needs_snapshots


@pytest.mark.parametrize("steps,line,message", [
    ("  - bot\n", 4, "steps[0]: expected one of: boot, expect"),
    ("  - wait: 3\n", 4, "steps[0]: unknown kind 'wait' (known: boot, expect, expect_all, reject, send_keys"),
    ("  - expect: x\n    timeout: 3\n", 4, "steps[0]: expected one key naming the kind (boot, expect, "),
    ("  - boot\n  - expect: {pattern: '(', timeout: 3}\n", 5, "steps[1].expect.pattern: not a valid regular expression"),
    ("  - expect: {pattern: x, timeout: -1}\n", 4, "steps[0].expect.timeout: must be more than 0"),
    ("  - expect: {patern: x}\n", 4, "steps[0].expect.patern: unknown key (known keys: pattern, timeout)"),
    ("  - expect\n", 4, "steps[0].expect: missing required key: pattern"),
    ("  - expect_all: [a, '(']\n", 4, "steps[0].expect_all.patterns: must be a list of valid regular expressions"),
    ("  - expect_all: []\n", 4, "steps[0].expect_all.patterns: must be a list of valid regular expressions, at least one"),
    ("  - expect_all: ['(?P<n>a)', '(?P<n>b)']\n", 4, "steps[0].expect_all.patterns: must be a list of valid regular expressions, at least one, no group name in two"),
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
    ("  - trace: {out: t.txt}\n", 4, "steps[0].trace.out: must be a file name ending in .json"),
    ("  - profile: {from: '(', to: x}\n", 4, "steps[0].profile.from: not a valid regular expression"),
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
    [scenario] = model.load(path)
    hardware = runner.hardware_for(scenario, SETTINGS)
    base = config.load(SETTINGS.root / "configs/smp2-vga.yaml")
    assert hardware == dataclasses.replace(base, memory=64 << 20, cpu=config.Cpu(model="Haswell", count=1),
                                           cmdline="test=heap", servers=[])


def test_config_path_beside_the_scenario_then_the_repository(tmp_path):
    (tmp_path / "mine.yaml").write_text("memory: 32M\n")
    [beside] = model.load(write(tmp_path, "name: x\nconfig: mine.yaml\nsteps: [boot]\n"))
    assert runner.hardware_for(beside, SETTINGS).memory == 32 << 20
    [missing] = model.load(write(tmp_path, "name: x\nsteps: [boot]\nconfig: nope.yaml\n", "m.yaml"))
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


# --- matrices ---------------------------------------------------------------------------

def test_a_matrix_of_lists_runs_every_combination(tmp_path):
    path = write(tmp_path, """\
name: boots
config: configs/default.yaml
matrix:
  cpus: [1, 2]
  model: [qemu64, Haswell]
overrides:
  cpu:
    count: ${cpus}
    model: ${model}
append: marker=${cpus}
steps:
  - boot
  - expect: "/artifacts/${model}/ on ${cpus} CPUs"
  - expect: "${cpus}"
""", "smp.yaml")
    runs = model.load(path)
    assert [r.label for r in runs] == ["smp[1-qemu64]", "smp[1-Haswell]", "smp[2-qemu64]", "smp[2-Haswell]"]
    assert [r.name for r in runs][:2] == ["boots [1-qemu64]", "boots [1-Haswell]"]
    last = runs[-1]
    assert last.path == path and last.variant == "2-Haswell" and last.append == "marker=2"
    assert last.steps[1] == model.Expect("/artifacts/Haswell/ on 2 CPUs") and last.steps[1].line == 13
    assert last.steps[2].pattern == "2"                 # in quotes: text
    assert runner.hardware_for(last, SETTINGS).cpu == config.Cpu(model="Haswell", count=2)  # alone: a number


def test_a_matrix_of_named_runs(tmp_path):
    path = write(tmp_path, """\
name: faults
config: configs/default.yaml
matrix:
  div_zero: {server: fault_div_zero, trap: 'integer divide by zero'}
  oob:      {server: fault_oob, trap: 'out of bounds'}
overrides:
  servers: [{name: "${server}"}]
steps:
  - boot
  - expect: "^server ${server} killed: (?P<why>${trap})$"
  - reject: "${why} again"
""", "faults.yaml")
    runs = model.load(path)
    assert [r.label for r in runs] == ["faults[div_zero]", "faults[oob]"]
    assert runs[1].overrides.servers == [config.Server(name="fault_oob")]
    assert runs[1].steps[1].pattern == "^server fault_oob killed: (?P<why>out of bounds)$"
    assert runs[1].steps[2].pattern == "${why} again"    # captured at run time, not the matrix's
    assert [f.name for f in runner.artifact_dirs(runs, tmp_path)] == ["faults.div_zero", "faults.oob"]


def test_a_file_that_does_not_load_is_a_run_that_fails_with_its_mistake(tmp_path):
    broken = write(tmp_path, "name: x\nconfig: c.yaml\nmatrix: {}\nsteps: [boot]\n", "broken.yaml")
    fine = write(tmp_path, "name: y\nconfig: c.yaml\nsteps: [boot]\n", "fine.yaml")
    runs = runner.load_all([broken, fine])
    assert [r.label for r in runs] == ["broken", "fine"]
    assert isinstance(runs[0], model.Unloadable) and runs[0].error.line == 3


MATRIX_BASE = "name: x\nconfig: configs/default.yaml\n"


@pytest.mark.parametrize("text,line,message", [
    ("matrix: {}\nsteps: [boot]\n", 3, "matrix: is empty"),
    ("matrix: [1, 2]\nsteps: [boot]\n", 3, "matrix: expected a mapping: `variable: [values]`"),
    ("matrix:\n  cpus: 2\nsteps: [boot]\n", 4, "matrix.cpus: expected a list of values or a mapping of variables"),
    ("matrix:\n  cpus: []\nsteps: [boot]\n", 4, "matrix.cpus: has no values"),
    ("matrix:\n  cpus: [1, [2, 4]]\nsteps: [boot]\n", 4, "matrix.cpus[1]: expected a single value (text or a number), not a list"),
    ("matrix:\n  cpus: [1, ~]\nsteps: [boot]\n", 4, "matrix.cpus[1]: expected a single value (text or a number), not nothing"),
    ("matrix:\n  cpus: [1, 1]\nsteps: [boot]\n", 4, "matrix.cpus: '1' given twice"),
    ("matrix:\n  2cpus: [1]\nsteps: [boot]\n", 4, "matrix.2cpus: a variable's name must be letters"),
    ("matrix:\n  a: [1]\n  b: {x: 1}\nsteps: [boot]\n", 4, "matrix: mixes lists (variables, every combination) and mappings"),
    ("matrix:\n  one run: {x: 1}\nsteps: [boot]\n", 4, "matrix.one run: a run's name must be letters, digits"),
    ("matrix:\n  one: {}\nsteps: [boot]\n", 4, "matrix.one: gives no variables"),
    ("matrix:\n  one: {x: [1]}\nsteps: [boot]\n", 4, "matrix.one.x: expected a single value"),
    ("matrix:\n  one: {x: 1}\n  two: {y: 1}\nsteps: [boot]\n", 5,
     "matrix.two: gives y; every run must give the same variables as the first (one: x)"),
    ("matrix:\n  x: [1]\nmatrix:\n  y: [1]\nsteps: [boot]\n", 5, "matrix: given twice"),
    ("matrix:\n  x: [1]\n  y: [2]\nappend: a=${x}\nsteps: [boot]\n", 5, "matrix.y: used nowhere: write ${y}"),
    ("matrix:\n  one: {x: 1}\nsteps: [boot]\n", 4, "matrix.one.x: used nowhere"),
    ("matrix:\n  x: [1]\nappend: a=${x} b=${y}\nsteps: [boot]\n", 5,
     "append: unknown variable ${y}: outside steps only the matrix's variables can be used (matrix variables: x)"),
    ("matrix:\n  x: [1]\nsteps:\n  - boot\n  - expect: '${x} ${nope}'\n", 7,
     "steps[1].expect.pattern: unknown variable ${nope} (known here: x; names come from matrix:"),
    ("matrix:\n  x: [1]\nsteps:\n  - expect: '(?P<x>.)'\n  - expect: 'a${x}'\n", 6,
     "steps[0].expect: saves x, a name the matrix gives: use another"),
    ("matrix:\n  cpus: [1, 99]\noverrides:\n  cpu:\n    count: ${cpus}\nsteps: [boot]\n", 7,
     "overrides.cpu.count: must be between 1 and 64 (in the matrix run 99)"),
    ("matrix:\n  n: [1]\noverrides:\n  servers:\n    - name: ${n}\nsteps: [boot]\n", 7,
     "overrides.servers[0].name: expected a string, got 1 (in the matrix run 1)"),   # as if written there
])
def test_matrix_mistakes_name_file_line_and_field(tmp_path, text, line, message):
    path = write(tmp_path, MATRIX_BASE + text)
    with pytest.raises(ConfigError) as caught:
        model.load(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)


def test_unknown_variables_in_steps_fail_at_load_without_a_matrix_too(tmp_path):
    path = write(tmp_path, MATRIX_BASE + "steps:\n  - state: {value: cpu_count, save_as: n}\n"
                                         "  - expect: '${n} ${m}'\n")
    with pytest.raises(ConfigError, match=r":5: steps\[1\]\.expect\.pattern: unknown variable \$\{m\} "
                                          r"\(known here: n;"):
        model.load(path)


def test_cli_lists_the_runs_and_picks_one(tmp_path):
    (tmp_path / "scenarios").mkdir()
    path = write(tmp_path / "scenarios", MATRIX_BASE + "matrix:\n  n: [1, 2]\nappend: n=${n}\nsteps: [boot]\n", "m.yaml")
    listed = subprocess.run([sys.executable, "-m", "workbench.cli", "run", "--list", str(path.parent)],
                            cwd=SETTINGS.root, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["m[1]", "m[2]"]
    assert listed.stdout.splitlines()[1].endswith("x [2]")
    one = subprocess.run([sys.executable, "-m", "workbench.cli", "run", "--list", f"{path}[2]"],
                         cwd=SETTINGS.root, capture_output=True, text=True, timeout=60)
    assert [line.split()[0] for line in one.stdout.splitlines()] == ["m[2]"]
    none = subprocess.run([sys.executable, "-m", "workbench.cli", "run", f"{path}[3]"],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "no run m[3] (runs: m[1], m[2])" in none.stderr
