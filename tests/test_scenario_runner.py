"""The scenario runner on the real kernel in real QEMU: passes, failures that say why and where,
a hung guest ended by the timeout with its console and state in the report, parallel runs that
keep apart, JUnit, the pytest plugin and fixture, and Ctrl-C leaving no QEMU or GDB behind."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from conftest import SETTINGS
from test_boot import qemu_with_marker, wait_gone
from workbench.scenario import model, runner

KWAST_BENCH = [sys.executable, "-m", "workbench.cli"]


def scenario_file(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nconfig: configs/default.yaml\n{body}")
    return path


def run_one(path: Path, tmp_path: Path) -> runner.Result:
    [scenario] = runner.load_all([path])
    return asyncio.run(runner.run(scenario, SETTINGS, tmp_path / "artifacts" / path.stem))


def test_passing_scenario_leaves_its_artifacts(tmp_path):
    path = scenario_file(tmp_path, "ok", "steps:\n  - boot\n  - expect: 'Kwast (?P<v>\\S+) booting'\n"
                                         "  - expect: 'Kwast ${v} booting|shutting down'\n  - expect_exit: success\n")
    result = run_one(path, tmp_path)
    assert result.passed, result.report()
    assert result.report().startswith(f"PASS ok ({path}) in ")
    assert "Kwast" in (result.artifacts / "serial.log").read_text()
    events = [json.loads(line) for line in (result.artifacts / "qmp-events.jsonl").read_text().splitlines()]
    assert "RESUME" in [e["event"] for e in events]  # the boot step's `cont`
    assert "ok   4 expect_exit: kernel shut down cleanly" in (result.artifacts / "report.txt").read_text()


def test_broken_scenario_reports_the_step_and_why(tmp_path):
    path = scenario_file(tmp_path, "broken", "append: hold\nsteps:\n  - boot\n  - expect: holding\n"
                                             "  - state: {thread: {name: no_such_thread}, timeout: 1}\n"
                                             "  - expect_exit: success\n")
    result = run_one(path, tmp_path)
    report = result.report()
    assert not result.passed
    assert f"at step 3 at {path}:7: state thread=ThreadIs(name='no_such_thread'" in report
    assert "why: no thread 'no_such_thread'; threads now: " in report and "idle" in report
    assert "ok   2 expect pattern='holding'" in report and "FAIL 3 state" in report
    assert "| holding: the machine stays up" in report          # the console's last lines
    assert "kernel state at failure:" in report and "threads (" in report
    assert (result.artifacts / "state-at-failure.txt").read_text().startswith("sequence ")
    # The ring's events up to the failure, as a Perfetto trace beside serial.log: the boot's
    # threads starting, each on its own named track.
    trace = json.loads((result.artifacts / "events-at-failure.json").read_text())["traceEvents"]
    assert sum(1 for e in trace if e["name"] == "thread start") >= 2
    assert {"kmain (1)", "idle (2)"} <= {e["args"]["name"] for e in trace if e["name"] == "thread_name"}


def test_reject_fails_on_a_console_line_that_must_not_be_there(tmp_path):
    path = scenario_file(tmp_path, "rejected", "append: hold\nsteps:\n  - boot\n"
                                               "  - expect: 'holding: the machine stays up'\n"
                                               "  - reject: 'no such line'\n  - reject: '^holding: .*up$'\n")
    result = run_one(path, tmp_path)
    report = result.report()
    assert not result.passed
    assert "ok   3 reject pattern='no such line': no line matches" in report
    console = (result.artifacts / "serial.log").read_text().splitlines()
    line = next(i for i, text in enumerate(console, 1) if text.startswith("holding: "))
    assert f"why: console line {line} matches /^holding: .*up$/: 'holding: the machine stays up'" in report


def test_expect_all_matches_in_any_order_and_names_what_is_missing(tmp_path):
    # The console prints the boot line before the holding line; listed the other way round they
    # still match, and the next search starts after the later of the two, so the boot line is
    # not found again.
    path = scenario_file(tmp_path, "unordered", "append: hold\nsteps:\n  - boot\n"
                                                "  - expect_all: ['^holding: the machine stays up$', '^Kwast (?P<v>\\S+) booting$']\n"
                                                "  - expect_all: {patterns: ['^Kwast ${v} booting$', 'no such line'], timeout: 1}\n")
    result = run_one(path, tmp_path)
    report = result.report()
    assert not result.passed
    assert re.search(r"ok   2 expect_all .*: matched 'holding: the machine stays up', 'Kwast \S+ booting', captured \{'v': ", report), report
    assert re.search(r"why: the console did not match /\^Kwast \S+ booting\$/ and /no such line/ within 1 s", report), report


def test_hung_guest_fails_on_the_timeout_with_console_and_state(tmp_path):
    path = scenario_file(tmp_path, "hung", "append: hold\ntimeout: 4\nsteps:\n  - boot\n"
                                           "  - expect: {pattern: 'never printed', timeout: 300}\n")
    started = time.monotonic()
    result = run_one(path, tmp_path)
    assert time.monotonic() - started < 30
    report = result.report()
    assert not result.passed
    assert f"at step 2 at {path}:7: expect pattern='never printed', timeout=300.0" in report
    assert "why: the scenario timed out after 4 s in this step" in report
    assert "| holding: the machine stays up" in report
    assert "cpus:" in result.state and "idle" in result.state, result.state


def test_config_errors_and_scenario_errors_are_setup_failures(tmp_path):
    path = scenario_file(tmp_path, "bad", "overrides:\n  memory: 1M\nsteps: [boot]\n")
    result = run_one(path, tmp_path)
    assert not result.passed and result.where == "setup"
    assert result.reason == f"{path}:4: overrides.memory: must be between 16M and 3G"
    broken = scenario_file(tmp_path, "typo", "steps:\n  - bot\n")
    assert run_one(broken, tmp_path).reason.startswith(f"{broken}:4: steps[0]: expected one of: boot")


def test_expect_error_that_does_not_happen_fails(tmp_path):
    path = scenario_file(tmp_path, "no_error", "expect_error: 'must be between'\nsteps: [boot, expect_exit]\n")
    result = run_one(path, tmp_path)
    assert not result.passed
    assert result.reason == "expected it to fail with /must be between/, but every step passed"


def test_parallel_runs_keep_their_machines_and_artifacts_apart(tmp_path):
    paths = [scenario_file(tmp_path, name, f"append: hold marker={name}\nsteps:\n  - boot\n"
                                           f"  - expect: 'command line: .*marker={name}'\n"
                                           "  - state: {rising: 'cpus[0].ticks', over: 1.5}\n")
             for name in ("left", "right")]
    started = time.monotonic()
    results = asyncio.run(runner.run_all(runner.load_all(paths), SETTINGS, tmp_path / "artifacts", jobs=2))
    wall = time.monotonic() - started
    assert all(r.passed for r in results), "\n".join(r.report() for r in results)
    assert wall < sum(r.seconds for r in results), "the two scenarios did not overlap"
    for name, other in (("left", "right"), ("right", "left")):
        log = (tmp_path / "artifacts" / name / "serial.log").read_text()
        assert f"marker={name}" in log and f"marker={other}" not in log


def test_python_steps_through_the_fixture(kwast_scenario):
    seen = {}

    async def threads_by_name(context):
        snap = await context.state()
        seen.update({t.name: t.state for t in snap.threads})
        return f"{len(snap.threads)} threads"

    result = kwast_scenario(model.Boot(), model.Expect("holding"), model.Call(threads_by_name),
                            model.State(value="cpus[0].ticks", at_least="1"),
                            append="hold", overrides={"memory": 64 << 20})
    assert result.passed and seen.get("kmain") and "idle" in seen
    assert "call threads_by_name: " in result.log[2]
    failed = kwast_scenario(model.Boot(), model.Expect("no such line", timeout=1), model.ExpectExit(),
                            must_pass=False)
    assert not failed.passed and failed.where.startswith("step 2 at (python): expect pattern='no such line'")


# --- the command line and pytest, as users run them -------------------------------------

def test_cli_exit_status_report_and_junit(tmp_path):
    good = scenario_file(tmp_path, "good", "steps: [boot, expect_exit]\n")
    bad = scenario_file(tmp_path, "bad", "steps:\n  - boot\n  - expect_exit: failure\n")
    junit = tmp_path / "out" / "junit.xml"
    done = subprocess.run([*KWAST_BENCH, "run", str(tmp_path / "scenarios"), "-j", "2", "--junit", str(junit),
                           "--artifacts", str(tmp_path / "artifacts")],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"PASS good ({good})" in done.stdout
    assert f"FAIL bad ({bad})" in done.stdout
    assert re.search(r"why: kernel shut down cleanly \(QEMU status \d+\); expected failure", done.stdout)
    assert "1 passed, 1 failed" in done.stdout
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failure = suite.find("testcase[@name='bad']/failure")
    assert failure is not None and "expected failure" in failure.get("message")
    only_good = subprocess.run([*KWAST_BENCH, "run", str(good), "--artifacts", str(tmp_path / "a2")],
                               cwd=SETTINGS.root, capture_output=True, text=True, timeout=300)
    assert only_good.returncode == 0, only_good.stdout


def test_pytest_collects_scenarios_and_shows_the_failing_step(tmp_path):
    scenario_file(tmp_path, "fine", "matrix:\n  cpus: [1, 2]\noverrides:\n  cpu:\n    count: ${cpus}\n"
                                    "steps: [boot, expect_exit]\n")
    broken = scenario_file(tmp_path, "wrong", "steps:\n  - boot\n  - expect: {pattern: 'no such text', timeout: 2}\n")
    (tmp_path / "scenarios" / "configs").mkdir()
    (tmp_path / "scenarios" / "configs" / "not-a-scenario.yaml").write_text("memory: 64M\n")
    junit = tmp_path / "junit.xml"
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(tmp_path / "scenarios"),
                           f"--junitxml={junit}", f"--scenario-artifacts={tmp_path / 'artifacts'}"],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout
    assert "1 failed, 2 passed" in done.stdout
    assert f"at step 2 at {broken}:5: expect pattern='no such text', timeout=2.0" in done.stdout
    assert "why: QEMU ended before the console matched /no such text/" in done.stdout \
        or "why: the console did not match /no such text/ within 2 s" in done.stdout
    assert "not-a-scenario" not in done.stdout
    cases = ElementTree.parse(junit).getroot().findall(".//testcase")
    assert sorted(c.get("name") for c in cases) == ["fine[1]", "fine[2]", "wrong"]  # a case per combination
    failure = next(c for c in cases if c.get("name") == "wrong").find("failure")
    assert failure is not None and "no such text" in failure.text


def children(pid: int, name: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                stat = (entry / "stat").read_text()
                if stat[stat.index("(") + 1:stat.rindex(")")] == name and int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                    found.append(int(entry.name))
        except (OSError, ValueError):
            pass
    return found


def test_ctrl_c_ends_every_qemu_and_gdb(tmp_path):
    marker = f"marker={uuid.uuid4().hex}"
    for name in ("one", "two"):  # two machines at once, one of them under GDB
        gdb = "  - gdb: {break: kmain}\n" if name == "one" else ""
        scenario_file(tmp_path, name, f"append: hold {marker}\nsteps:\n{gdb}  - boot\n"
                                      "  - expect: {pattern: 'never printed', timeout: 600}\n")
    process = subprocess.Popen([*KWAST_BENCH, "run", str(tmp_path / "scenarios"), "-j", "2",
                                "--artifacts", str(tmp_path / "artifacts")],
                               cwd=SETTINGS.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (len(qemu_with_marker(marker)) == 2 and children(process.pid, "gdb")):
        assert time.monotonic() < deadline and process.poll() is None, "the scenarios did not get going"
        time.sleep(0.1)
    gdbs = children(process.pid, "gdb")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert wait_gone(marker) == []
    deadline = time.monotonic() + 10  # a GDB killed with its runner is reaped by init
    while (left := [pid for pid in gdbs if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"GDB outlived the run: {left}"


def test_state_predicates_on_servers_endpoints_and_waits_say_what_differs(tmp_path):
    """configs/desktop.yaml: the predicates in words hold where the kernel agrees, and a failing
    one names the field that differs and what it is now."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    path = folder / "words.yaml"
    path.write_text(
        "name: words\nconfig: configs/desktop.yaml\nsteps:\n  - boot\n"
        "  - expect: {pattern: '^\\[ps2\\] ready$', timeout: 60}\n"
        "  - state: {thread: {name: console, state: Blocked, waits: '^receive on endpoint console$'}}\n"
        "  - state: {endpoint: {name: console, receivers: 1, errors: 0}}\n"
        "  - send_keys: {text: abc}\n"
        "  - state: {endpoint: {name: console, calls_at_least: 3, replies_at_least: 3}, timeout: 30}\n"
        "  - state: {value: 'endpoints[console].calls', at_least: 3}\n"
        "  - state: {server: {name: console, state: running, restarts: 0, memory_at_least: 1}}\n"
        "  - inject: {action: kill, server: console}\n"
        "  - state: {server: {name: console, state: running, restarts: 1, reason: 'killed on request'}, timeout: 30}\n"
        "  - state: {server: {name: ps2, restarts: 1}, timeout: 1}\n")
    result = run_one(path, tmp_path)
    report = result.report()
    assert not result.passed
    assert "ok   3 state thread=" in report and "waits: receive on endpoint console" in report
    assert re.search(r"ok   6 state endpoint=.*: endpoint console: calls [3-9]", report), report
    assert "ok   8 state server=" in report
    assert "ok   10 state server=" in report and "server console running, restarts 1" in report, report
    assert "FAIL 11 state" in report and "why: server ps2 (running): restarts 0, not 1 (waited 1 s)" in report, report
