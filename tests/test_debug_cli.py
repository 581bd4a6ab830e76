"""`kwast-bench state`, `gdb` and `bench` as a user runs them, on their own machine and attached
to a named `boot --name` session."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import uuid

from conftest import SETTINGS
from test_boot import KWAST_BENCH, run_cli, wait_gone
from workbench import session


def threads(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of `state`'s threads table by thread name, each row by column."""
    table = re.search(r"^threads \(\d+, dropped \d+\):\n((?:  .*\n?)+)", stdout, re.M)
    assert table, stdout
    # Every column but the last (waits, in words) is one word.
    header, *rows = [line.split() for line in table.group(1).splitlines()]
    rows = [row[:len(header) - 1] + [" ".join(row[len(header) - 1:])] for row in rows]
    return {row[header.index("name")]: dict(zip(header, row)) for row in rows}


def test_state_boots_its_own_machine_and_prints_tables():
    done = run_cli("state")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^sequence \d+\s+cpus 1\s+read\+decode [\d.]+ ms$", done.stdout, re.M), done.stdout
    cpus = done.stdout.split("cpus:\n", 1)[1].splitlines()
    assert cpus[0].split()[:2] == ["index", "online"]
    assert cpus[1].split()[:2] == ["0", "1"]
    # Read as soon as the kernel has published its CPUs: kmain (the boot thread, id 1) may still
    # be running or already asleep in `hold`; idle (id 2, the lowest priority) waits or runs.
    shown = threads(done.stdout)
    kmain, idle = shown["kmain"], shown["idle"]
    assert (kmain["id"], kmain["server"], kmain["priority"]) == ("1", "-", "4"), shown  # a kernel thread
    assert kmain["state"] in ("Running", "Ready", "Sleeping"), shown
    assert (idle["id"], idle["server"], idle["priority"]) == ("2", "-", "0"), shown
    assert idle["state"] in ("Running", "Ready"), shown
    assert "events (" in done.stdout


def test_state_json_is_one_snapshot_in_words():
    done = run_cli("state", "--json", "--events", "4")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    snapshot = json.loads(line)
    assert snapshot["layout_version"] == 3 and len(snapshot["events"]) == min(4, snapshot["events_written"])
    threads = {t["name"]: t for t in snapshot["threads"]}
    assert threads["kmain"]["server"] == "" and threads["kmain"]["priority"] == 4
    assert threads["kmain"]["state"] != "Sleeping" or threads["kmain"]["waits"].startswith("sleep until +")
    assert all(event["text"] for event in snapshot["events"])


def test_gdb_script_on_its_own_machine_held_at_reset():
    done = run_cli("gdb", "--ex", "break kmain", "--ex", "continue", "--ex", "bt")
    assert done.returncode == 0, done.stderr + done.stdout
    assert re.search(r"^#\d+ .*kmain .*main\.rs:\d+", done.stdout, re.M), done.stdout


def test_state_and_gdb_attach_to_a_named_boot_session():
    name = f"t{uuid.uuid4().hex[:8]}"
    marker = f"marker={name}"
    boot = subprocess.Popen([*KWAST_BENCH, "boot", "--name", name, "--append", f"hold {marker}", "--timeout", "120"],
                            cwd=SETTINGS.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        registered = session.registry_dir() / f"{name}.json"
        deadline = time.monotonic() + 30
        while not registered.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert registered.exists(), "boot --name did not register its session"
        # Once the kernel holds, kmain sleeps and idle runs: read again until then.
        deadline = time.monotonic() + 60
        while True:
            state = run_cli("state", "--session", name)
            assert state.returncode == 0, state.stderr
            assert re.search(r"cpus 1 ", state.stdout)
            shown = threads(state.stdout)
            if shown["kmain"]["state"] == "Sleeping" or time.monotonic() > deadline:
                break
        assert (shown["kmain"]["state"], shown["idle"]["state"]) == ("Sleeping", "Running"), state.stdout
        gdb = run_cli("gdb", "--session", name, "--ex", "bt", "--ex", "info registers rip")
        assert gdb.returncode == 0, gdb.stderr + gdb.stdout
        assert re.search(r"#0 .* in \S+", gdb.stdout) and "rip" in gdb.stdout
        again = run_cli("state", "--session", name)  # GDB detached: the session lives on
        assert again.returncode == 0, again.stderr
    finally:
        boot.send_signal(signal.SIGINT)  # Ctrl-C, as a user ends it
        boot.communicate(timeout=30)
    assert wait_gone(marker) == []
    assert not registered.exists(), "the session file outlived its boot"
    missing = run_cli("state", "--session", name)
    assert missing.returncode == 2
    assert f"no running session named '{name}'" in missing.stderr and "boot --name" in missing.stderr


def test_bench_prints_its_figures(tmp_path):
    # The figures are for people to read against the targets; a test cannot judge speed on a
    # shared machine, only that each figure was measured, printed, and written for tools.
    written = tmp_path / "figures.json"
    done = run_cli("bench", "-n", "30", "--json", str(written), timeout=400)  # five suites, nine boots
    assert done.returncode == 0, done.stderr
    figures = {f["name"]: f for f in json.loads(written.read_text())}
    for name in ("kernel state read+decode (RAM file mmap)", "kernel state read+decode (QMP pmemsave+xp)",
                 "GDB/MI round trip (-data-evaluate-expression)"):
        assert figures[name]["value"] > 0 and figures[name]["suite"] == "latency"
        assert re.search(rf"^{re.escape(name)}\s+median\s+[\d.]+ ms", done.stdout, re.M), done.stdout
    assert figures["IPC 64-byte call+reply"]["value"] > figures["thread switch"]["value"] > 0
    assert figures["IPC 64-byte call+reply"]["unit"] == "instructions"
    wasm = [f for f in figures.values() if f["suite"] == "wasm"]
    assert len(wasm) >= 8 and all(f["value"] > 0.5 and f["target"] and f["met"] == (f["value"] <= f["target"])
                                  for f in wasm)
    assert re.search(r"^wasm/native geometric mean\s+[\d.]+ ratio\s+\(target <= 1\.3: (met|MISSED)\)$",
                     done.stdout, re.M), done.stdout
    assert figures["boot to desktop ready"]["value"] > 1_000_000 and figures["boot to desktop ready"]["suite"] == "boot"
    assert figures["boot wall time / trivial kernel's"]["target"] == 2.0
