"""The real kernel booted in real QEMU: banner, boot modules, exit codes, and the workbench's
promise that no QEMU outlives it on any path."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import SETTINGS, assert_clean_exit
from workbench.qemu import machine

KWAST_BENCH = [sys.executable, "-m", "workbench.cli"]


def test_default_config_boots_and_lists_modules(boot):
    outcome = boot()
    assert_clean_exit(outcome)
    assert re.search(r"^Kwast \d+\.\d+\.\d+ booting$", outcome.serial, re.M)
    assert "modules: 1" in outcome.serial
    module = re.search(r"module (\S+) \((\d+) bytes\) at 0x[0-9a-f]+: \"(.*)\"", outcome.serial)
    assert module, outcome.serial
    hello = SETTINGS.server_artifact("hello", "qemu64")
    assert module.group(1) == "hello.cwasm"
    assert int(module.group(2)) == hello.stat().st_size
    assert module.group(3) == f"{hello} memory={16 << 20} -- world"   # the kernel's settings, then the arguments


def test_kernel_sees_its_command_line_and_memory(boot):
    outcome = boot(append="quiet=1 marker=abc", memory=64 << 20)
    assert_clean_exit(outcome)
    assert re.search(r'command line: ".* quiet=1 marker=abc"', outcome.serial)
    usable = re.findall(r"memory 0x([0-9a-f]+)-0x([0-9a-f]+) usable", outcome.serial)
    total = sum(int(end, 16) - int(start, 16) for start, end in usable)
    assert 60 << 20 < total <= 64 << 20


def test_no_servers_means_no_modules(boot):
    outcome = boot(servers=[])
    assert_clean_exit(outcome)
    assert "modules: 0" in outcome.serial


def test_panic_fails_with_its_message_visible(boot):
    outcome = boot(append="test=fault_panic")
    assert outcome.status == "failure"
    assert "KERNEL PANIC at src/ktest.rs:" in outcome.serial
    with pytest.raises(AssertionError, match="deliberate panic from a kernel test"):
        assert_clean_exit(outcome)


def test_unknown_kernel_test_is_a_failure(boot):
    outcome = boot(append="test=no_such_test")
    assert outcome.status == "failure"
    assert "ktest no_such_test: no such test" in outcome.serial


def test_timeout_ends_qemu(boot):
    # Without isa-debug-exit the kernel cannot leave QEMU: it halts, and the boot times out.
    started = time.monotonic()
    outcome = boot(timeout=3, isa_debug_exit=False)
    assert outcome.status == "timeout"
    assert "nothing left to run: shutting down" in outcome.serial
    assert time.monotonic() - started < 15


def test_missing_server_module_is_a_clear_error(boot, default_config):
    from workbench.config import Server
    from workbench.qemu import QemuError

    with pytest.raises(QemuError, match=r"nosuch\.cwasm does not exist .*servers/nosuch/"):
        boot(servers=[Server(name="nosuch")])


# --- the command line, as a user runs it ----------------------------------------------

def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*KWAST_BENCH, *args], cwd=SETTINGS.root, capture_output=True, text=True, timeout=timeout)


def test_cli_boot_streams_serial_and_returns_kernel_status():
    done = run_cli("boot")
    assert done.returncode == 0, done.stderr
    assert "Kwast" in done.stdout and "module hello.cwasm" in done.stdout
    assert "kernel shut down cleanly" in done.stderr
    failed = run_cli("boot", "--append", "test=fault_panic")
    assert failed.returncode == 1
    assert "KERNEL PANIC" in failed.stdout


def test_cli_broken_yaml_names_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("memory: 128M\ncpu:\n  count: -3\n")
    done = run_cli("boot", "--config", str(broken))
    assert done.returncode == 2
    assert f"{broken}:3: cpu.count: must be between 1 and 64" in done.stderr
    assert done.stdout == ""


def test_cli_failed_build_has_its_own_status(tmp_path):
    # A repository whose one server does not compile: the first step fails, with the compiler's words.
    (tmp_path / "workbench.toml").write_text((SETTINGS.root / "workbench.toml").read_text())
    (tmp_path / "servers" / "broken").mkdir(parents=True)
    (tmp_path / "servers" / "broken" / "main.c").write_text("int main(void) { return missing; }\n")
    (tmp_path / "servers" / "Makefile").write_text((SETTINGS.servers_dir / "Makefile").read_text())
    done = subprocess.run([*KWAST_BENCH, "build"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "building servers failed" in done.stderr and "use of undeclared identifier 'missing'" in done.stderr


def qemu_with_marker(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                if (entry / "comm").read_text().startswith("qemu-system"):
                    pids.append(int(entry.name))
        except OSError:
            pass
    return pids


def start_hanging_cli(tmp_path: Path, marker: str) -> subprocess.Popen:
    # A config without isa-debug-exit: the guest never ends by itself.
    hanging = tmp_path / "hang.yaml"
    hanging.write_text("isa_debug_exit: false\nservers:\n  - name: hello\n")
    # Started with SIGINT ignored, as a shell script's background job is: Ctrl-C must still work.
    process = subprocess.Popen([*KWAST_BENCH, "boot", "--config", str(hanging), "--append", marker],
                               cwd=SETTINGS.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert process.stdout is not None
    for line in process.stdout:  # wait until the kernel is up
        if "shutting down" in line:
            break
    assert qemu_with_marker(marker), "QEMU should be running now"
    return process


def wait_gone(marker: str, seconds: float = 10) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := qemu_with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_ctrl_c_ends_qemu(tmp_path):
    marker = f"marker={uuid.uuid4().hex}"
    process = start_hanging_cli(tmp_path, marker)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)  # generous: a loaded CI machine, not a speed check
    assert process.returncode == 130, stderr
    assert wait_gone(marker) == []


def test_killed_workbench_takes_qemu_with_it(tmp_path):
    marker = f"marker={uuid.uuid4().hex}"
    process = start_hanging_cli(tmp_path, marker)
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)
    assert wait_gone(marker) == []


def test_a_killed_workbenchs_dir_is_swept_at_the_next_start(boot):
    # A dir whose workbench process is gone (it was killed: no shutdown removed it) goes, guest
    # RAM file and all, when the next machine starts; a live process's dir, and a dir too new
    # to have its owner written yet, stay.
    gone = subprocess.Popen(["true"])
    gone.wait()
    dirs = {name: Path(tempfile.mkdtemp(prefix=machine.DIR_PREFIX)) for name in ("stale", "live", "new")}
    (dirs["stale"] / machine.OWNER_FILE).write_text(str(gone.pid))
    (dirs["stale"] / "ram").write_bytes(bytes(1 << 20))
    (dirs["live"] / machine.OWNER_FILE).write_text(str(os.getpid()))
    try:
        assert_clean_exit(boot(append="test=heap", timeout=60))
        assert not dirs["stale"].exists()
        assert dirs["live"].exists() and dirs["new"].exists()
    finally:
        for folder in dirs.values():
            shutil.rmtree(folder, ignore_errors=True)


def test_a_dir_without_an_owner_goes_when_old_and_no_qemu_answers(tmp_path):
    # Made by a workbench older than owner files: swept once an hour old with nothing listening
    # on its QMP socket; kept while young, or while something answers there.
    # Nothing else named kwast-* (the sessions' registry) is taken for a machine's dir.
    old = time.time() - 2 * 3600
    quiet, answering, young = (tmp_path / f"{machine.DIR_PREFIX}{n}" for n in ("quiet123", "answerin", "young123"))
    registry = tmp_path / f"{machine.DIR_PREFIX}sessions-0"
    for folder in (quiet, answering, young, registry):
        folder.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(answering / "qmp.sock"))
        listener.listen()
        for folder in (quiet, answering, registry):
            os.utime(folder, (old, old))
        assert machine.sweep_stale_dirs(tmp_path) == [quiet]
    assert not quiet.exists() and answering.exists() and young.exists() and registry.exists()
