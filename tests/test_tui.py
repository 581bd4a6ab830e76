"""The Textual workbench, driven by Textual's Pilot against the real kernel in real QEMU: boot,
console, live scheduler state, typing through QMP, a GDB breakpoint; plus SVG snapshots of the
main screens on a fixed set of configs (no live numbers in them)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import time

import pytest
from textual.widgets import DataTable, Input, Label, Static, TabbedContent

from conftest import SETTINGS
from workbench import build
from workbench.qemu import screen
from workbench.tui import debugger
from workbench.tui.app import KwastApp
from workbench.tui.build_pane import BuildPane
from workbench.tui.console import SerialConsole
from workbench.tui.feed import StateFeed
from workbench.tui.vm import VmStatus

SIZE = (120, 40)
# Kernel command-line word that keeps the machine up (kernel/src/main.rs).
HOLD = "hold"


async def until(pilot, condition, what: str, timeout: float = 60, seen=None) -> None:
    """Lets the app run until `condition()` holds; fails naming `what` after `timeout` s, and
    what `seen()` says there was instead."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}" + (f"; {seen()}" if seen else ""))
        await pilot.pause(0.05)


def run(scenario) -> None:
    asyncio.run(scenario())


def cells(table: DataTable, column: str) -> list[str]:
    return [str(table.get_cell(row, column)) for row in table.rows]


async def boot_held(app: KwastApp, pilot) -> SerialConsole:
    await pilot.press("f2")
    console = app.query_one(SerialConsole)
    vm = app.query_one(VmStatus)
    await until(pilot, lambda: HOLD in console.text and vm.status == "running", "the kernel to boot and hold",
                seen=lambda: f"machine {vm.status!r}, console ends {console.text[-600:]!r}")
    return console


def test_boot_shows_banner_and_live_kernel_threads_then_quit_ends_qemu():
    async def scenario():
        app = KwastApp(SETTINGS, cmdline=HOLD)
        async with app.run_test(size=SIZE) as pilot:
            console = await boot_held(app, pilot)
            assert re.search(r"^Kwast \S+ booting$", console.text, re.MULTILINE), console.text

            await pilot.press("ctrl+n")  # console -> scheduler
            assert app.query_one(TabbedContent).active == "scheduler"
            threads = app.query_one("#threads", DataTable)
            await until(pilot, lambda: {"kmain", "idle"} <= set(cells(threads, "name")), "kmain and idle in the table")
            # Live: the idle thread's ticks grow while the guest runs, with no pause in between.
            idle = cells(threads, "name").index("idle")
            first = int(cells(threads, "run_ticks")[idle])
            await until(pilot, lambda: int(cells(threads, "run_ticks")[idle]) > first, "idle's run ticks to grow")
            assert app.query_one(VmStatus).status == "running"
            cpus = app.query_one("#cpu-table", DataTable)
            assert cells(cpus, "cpu") == ["0"] and cells(cpus, "running")[0] in {"kmain", "idle"}

            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.query_one(VmStatus).machine is None, "the machine to end")
        assert app.return_code == 0
        # no_qemu_left_behind (conftest) checks that QEMU is gone.

    run(scenario)


def test_typed_keys_are_echoed_by_the_ps2_and_console_servers():
    # configs/desktop.yaml: init, the console server (owns COM1) and the PS/2 driver server, so
    # what is typed in the pane travels QMP -> IRQ 1 -> ps2 -> console -> serial -> this pane.
    async def scenario():
        app = KwastApp(SETTINGS, config_path=SETTINGS.configs_dir / "desktop.yaml")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("f2")
            console = app.query_one(SerialConsole)
            await until(pilot, lambda: "[ps2] ready" in console.text, "the keyboard driver to start", timeout=60)
            await pilot.press("ctrl+n")  # console -> scheduler: the servers' threads are there
            threads = app.query_one("#threads", DataTable)
            await until(pilot, lambda: {"init", "console", "ps2"} <= set(cells(threads, "name")), "the server threads")
            await pilot.press("ctrl+t")
            assert app.focused.id == "console-type"
            await pilot.press(*"Hi there!", "enter")
            typed = app.query_one("#console-typed", Label)
            await until(pilot, lambda: str(typed.render()) != "", "the keys to be sent")
            assert str(typed.render()) == "sent 10 keys"  # nine characters and Enter
            assert app.query_one("#console-type", Input).value == ""
            echoed = lambda: "Hi there!" in console.text.split("[ps2] ready", 1)[1]
            await until(pilot, echoed, "the guest to echo the keys", timeout=60)
            await pilot.press("é", "enter")
            await until(pilot, lambda: str(typed.render()) == "not sent", "the untypable key to be refused")
            # ps2 calls console once per character: the IPC view counts those calls on the
            # endpoint init named "console", and says so in words in the event log, with the
            # IRQ's signal that woke ps2 for the key.
            await pilot.press("ctrl+n")  # console -> scheduler: waits in words
            waits = lambda: dict(zip(cells(threads, "name"), cells(threads, "waits")))
            await until(pilot, lambda: waits().get("console") == "receive on endpoint console", "console's wait in words")
            await pilot.press("ctrl+n")  # scheduler -> IPC
            assert app.query_one(TabbedContent).active == "ipc"
            endpoints = app.query_one("#endpoints", DataTable)
            calls = lambda: dict(zip(cells(endpoints, "name"), map(int, cells(endpoints, "calls"))))
            # The calls' rate went up meanwhile: the endpoint's trend has a bar above the floor
            # (it keeps the last six seconds of rates).
            trend = lambda: dict(zip(cells(endpoints, "name"), cells(endpoints, "trend"))).get("console", "")
            await until(pilot, lambda: calls().get("console", 0) >= 10 and set(trend()) - {"▁"},
                        "ten calls on endpoint console in the IPC view, at a rate above 0")
            events = app.query_one("#events", DataTable)
            await until(pilot, lambda: {"ps2 → console call 1 bytes", "an IRQ signals notification irq1"}
                        <= set(cells(events, "event")), "a call and a signal in words")
            app.query_one("#event-filter", Input).value = "console"
            await until(pilot, lambda: cells(events, "event") and all("console" in e for e in cells(events, "event")),
                        "only console's events")
            await pilot.press("ctrl+n")  # IPC -> servers
            servers = app.query_one("#servers", DataTable)
            memory = lambda: dict(zip(cells(servers, "name"), cells(servers, "memory")))
            await until(pilot, lambda: {"init", "console", "ps2"} <= set(memory()), "a row per server")
            assert memory()["ps2"].endswith("/ 16384 KiB") and not memory()["ps2"].startswith("0 "), memory()
            assert cells(servers, "restarts") == ["0", "0", "0"]
            # F12 makes ps2 crash on purpose (a wasm `unreachable`): its row says how it died and
            # that init restarted it.
            await pilot.press("ctrl+t")
            await pilot.press(*"<f12>", "enter")
            row = lambda: {key: str(servers.get_cell("ps2", key)) for key in ("state", "restarts", "last_exit")}
            await until(pilot, lambda: row()["restarts"] == "1" and row()["state"] == "running",
                        "ps2 restarted once, in the servers view", timeout=60)
            assert row()["last_exit"].startswith("killed: ") and "unreachable" in row()["last_exit"], row()
            await pilot.press("ctrl+q")

    run(scenario)


def test_reset_reboots_the_kernel_and_keeps_the_machine():
    async def scenario():
        app = KwastApp(SETTINGS, cmdline=HOLD)
        async with app.run_test(size=SIZE) as pilot:
            console = await boot_held(app, pilot)
            await pilot.press("f4")
            holding = "holding: the machine stays up"
            await until(pilot, lambda: console.text.count(holding) == 2, "the kernel to boot again and hold", timeout=60)
            assert len(re.findall(r"^Kwast \S+ booting$", console.text, re.MULTILINE)) == 2
            vm = app.query_one(VmStatus)
            await until(pilot, lambda: vm.status == "running", "the status to say running")
            assert vm.machine is not None and vm.machine.process.returncode is None, "QEMU is still there"
            await pilot.press("ctrl+q")

    run(scenario)


def test_the_scheduler_pane_shows_every_cpu_and_where_each_thread_runs():
    async def scenario():
        app = KwastApp(SETTINGS, config_path=SETTINGS.configs_dir / "smp4.yaml", cmdline=HOLD)
        async with app.run_test(size=SIZE) as pilot:
            console = await boot_held(app, pilot)
            await until(pilot, lambda: "[ps2] ready" in console.text, "the keyboard driver to start", timeout=60)
            await pilot.press("ctrl+n")  # console -> scheduler
            cpus, threads = app.query_one("#cpu-table", DataTable), app.query_one("#threads", DataTable)
            await until(pilot, lambda: cells(cpus, "cpu") == ["0", "1", "2", "3"], "a row per CPU")
            # Every CPU's idle thread is a row, on its own CPU; the load sparkline fills in.
            await until(pilot, lambda: {"idle", "idle1", "idle2", "idle3"} <= set(cells(threads, "name")), "four idle threads")
            on = dict(zip(cells(threads, "name"), cells(threads, "on")))
            assert [on["idle"], on["idle1"], on["idle2"], on["idle3"]] == ["0", "1", "2", "3"]
            await until(pilot, lambda: all(len(trend) >= 2 for trend in cells(cpus, "trend")), "load sparklines")
            assert all(0 <= float(load) <= 100 for load in cells(cpus, "load"))
            await pilot.press("ctrl+q")
            await until(pilot, lambda: app.query_one(VmStatus).machine is None, "the machine to end")

    run(scenario)


def cpu_ticks(app: KwastApp) -> int:
    """CPU 0's timer ticks as the scheduler view last showed them (0 before the first snapshot)."""
    ticks = cells(app.query_one("#cpu-table", DataTable), "ticks")
    return int(ticks[0]) if ticks else 0


def notified(app: KwastApp, text: str) -> bool:
    """Whether a notification saying `text` is on screen (needs `run_test(notifications=True)`)."""
    return any(text in str(toast.render()) for toast in app.screen.query("Toast"))


def test_pause_continue_screendump_savevm_and_loadvm_from_the_keyboard():
    # configs/smp2-vga.yaml has a VGA display (screendumps) and a snapshot disk (savevm/loadvm).
    async def scenario():
        app = KwastApp(SETTINGS, config_path=SETTINGS.configs_dir / "smp2-vga.yaml", cmdline=HOLD)
        # With notifications on, their toasts are widgets the test can read.
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await boot_held(app, pilot)
            vm = app.query_one(VmStatus)
            await pilot.press("ctrl+n")  # console -> scheduler
            await until(pilot, lambda: cpu_ticks(app) > 0, "the scheduler view to show ticks")

            await pilot.press("f3")
            await until(pilot, lambda: vm.status == "paused", "the status to say paused")
            await pilot.pause(0.6)  # the feed reads four times a second: let it catch up
            stopped = cpu_ticks(app)
            await pilot.pause(1.0)
            assert cpu_ticks(app) == stopped, "the kernel's clock stands still while paused"
            await pilot.press("f3")
            await until(pilot, lambda: vm.status == "running", "the status to say running again")
            await until(pilot, lambda: cpu_ticks(app) > stopped, "the ticks to count on")

            dumps = SETTINGS.build_dir / "screendumps"
            before = set(dumps.glob("*.ppm")) if dumps.exists() else set()
            await pilot.press("f10")
            await until(pilot, lambda: notified(app, "screendump saved"), "the screendump")
            (dump,) = set(dumps.glob("*.ppm")) - before
            # The picture shows the firmware's text as the VGA text buffer holds it: a black or
            # stale picture fails (tests/test_driver.py shows the check failing).
            text = await vm.machine.screen_text()
            assert text.text.startswith("SeaBIOS"), text.text
            assert screen.mismatch(screen.Picture.from_ppm(dump.read_bytes()), text) is None

            await pilot.press("f11")
            await until(pilot, lambda: notified(app, "VM state saved"), "savevm to finish")
            saved = cpu_ticks(app)
            # Far enough on that the restored clock, read at the feed's next refresh, is behind.
            await pilot.pause(3.0)
            later = cpu_ticks(app)
            assert later > saved, "the clock moves on after the save"
            await pilot.press("f12")
            await until(pilot, lambda: notified(app, "VM state loaded"), "loadvm to finish")
            # Back in time: the kernel's clock is where it was around the save, before `later`.
            await until(pilot, lambda: cpu_ticks(app) < later, "the ticks to go back to the saved state")
            await until(pilot, lambda: vm.status == "running", "the restored machine to run")
            await pilot.press("ctrl+q")

    run(scenario)


def test_console_search_finds_a_line():
    async def scenario():
        app = KwastApp(SETTINGS, cmdline=HOLD)
        async with app.run_test(size=SIZE) as pilot:
            console = await boot_held(app, pilot)
            await pilot.press("ctrl+f", *"holding", "enter")
            line = next(i for i, text in enumerate(console.text.splitlines(), 1) if "holding" in text)
            assert str(app.query_one("#console-matches", Label).render()) == f"line {line}"

    run(scenario)


def test_breakpoint_on_a_kernel_function_stops_and_shows_where():
    # The held kernel's kmain sleeps a second at a time, so it is hit soon after we continue.
    # Its first code is inlined (an rflags read): the pane must show sleep_ms, not that.
    function = "kwast_kernel::sched::sleep_ms"

    async def scenario():
        app = KwastApp(SETTINGS, cmdline=HOLD)
        async with app.run_test(size=SIZE) as pilot:
            await boot_held(app, pilot)
            status = app.query_one("#gdb-status", Static)
            await pilot.press("ctrl+g")
            assert app.query_one(TabbedContent).active == "debugger" and app.focused.id == "breakpoint"
            await until(pilot, lambda: str(status.render()).startswith("stopped: attached"), "GDB to attach")
            await until(pilot, lambda: app.query_one(VmStatus).status == "paused", "the STOP event")

            await pilot.press(*function, "enter")
            await until(pilot, lambda: "breakpoint 1 at" in str(status.render()), "the breakpoint to be set")
            await pilot.press("f5")
            await until(pilot, lambda: str(status.render()).startswith("stopped: breakpoint 1 hit"),
                        "the breakpoint to be hit")
            # Named as the function hit; "inside inlined ..." only if frame 0 is another function.
            shown_status = str(status.render())
            assert re.search(r"hit in kwast_kernel::sched::sleep_ms \S*sched/mod.rs:\d+", shown_status), shown_status
            innermost = app.query_one("#backtrace", DataTable).get_row_at(0)[1]
            assert ("(inside inlined " in shown_status) == (not innermost.endswith("sleep_ms")), shown_status
            backtrace = app.query_one("#backtrace", DataTable)
            shown = backtrace.get_row_at(backtrace.cursor_row)
            assert shown[1].endswith("sleep_ms") and "sched/mod.rs:" in shown[2], shown
            table = app.query_one("#registers", DataTable)
            registers = dict(table.get_row_at(i) for i in range(table.row_count))
            assert int(registers["rip"], 16) > 0
            assert "sched/mod.rs" in str(app.query_one("#source", Static).render())

            await pilot.press("ctrl+q")
        # no_gdb_left_behind and no_qemu_left_behind (conftest) check both ended.

    run(scenario)


def test_a_breakpoint_stop_in_inlined_code_shows_the_function_asked_for():
    # What GDB reported for `break kwast_kernel::sched::sleep_ms` in one build (scenarios/gdb-kmain):
    # the rflags read inlined at the top of sleep_ms is frame 0, sleep_ms is frame 3, same address.
    at = "0x0000000000135a10"
    frames = [{"level": "0", "addr": at, "func": "x86_64::registers::rflags::x86_64::read_raw"},
              {"level": "1", "addr": at, "func": "x86_64::registers::rflags::x86_64::read"},
              {"level": "2", "addr": at, "func": "kwast_kernel::arch::x86_64::cpu::InterruptGuard::new"},
              {"level": "3", "addr": at, "func": "kwast_kernel::sched::sleep_ms"},
              {"level": "4", "addr": "0x0000000000135c3e", "func": "kwast_kernel::kmain"}]
    stop = {"reason": "breakpoint-hit", "bkptno": "2", "frame": frames[0]}
    assert debugger._breakpoint_frame(stop, frames, "kwast_kernel::sched::sleep_ms") is frames[3]
    assert debugger._breakpoint_frame(stop, frames, "sleep_ms") is frames[3]
    # Not above the stop address, not for file:line, not for other stops: frame 0 stays.
    assert debugger._breakpoint_frame(stop, frames, "kmain") is frames[0]
    assert debugger._breakpoint_frame(stop, frames, "main.rs:83") is frames[0]
    assert debugger._breakpoint_frame({**stop, "reason": "end-stepping-range"}, frames, "sleep_ms") is frames[0]


def test_a_bad_config_shows_its_error_and_keeps_the_selected_one(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(SETTINGS.default_config, configs / "default.yaml")
    (configs / "broken.yaml").write_text("memory: 128M\ncpu:\n  count: 99\n")
    settings = dataclasses.replace(SETTINGS, configs_dir=configs, default_config=configs / "default.yaml")

    async def scenario():
        app = KwastApp(settings)
        async with app.run_test(size=SIZE) as pilot:
            assert app.config.path.name == "default.yaml"
            app.query_one("#configs").focus()
            await pilot.press("home", "enter")  # broken sorts first
            error = app.query_one("#config-error", Static)
            await until(pilot, lambda: "broken.yaml:3: cpu.count: must be between 1 and 64" in str(error.render()),
                        "the config error")
            assert app.config.path.name == "default.yaml"

    run(scenario)


def test_a_failed_build_shows_the_first_error_and_the_old_image_still_boots():
    failing = build.BuildStep("kernel", ["sh", "-c", "echo Compiling kwast; echo 'src/main.rs:3:5: error: no'; "
                                                     "echo 'error: aborting'; exit 101"], SETTINGS.root)

    async def scenario():
        app = KwastApp(SETTINGS, cmdline=HOLD, build_steps=[failing])
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+b")
            error = app.query_one("#build-error", Static)
            await until(pilot, lambda: "src/main.rs:3:5: error: no" in str(error.render()), "the first error")
            assert "error: aborting" not in str(error.render())
            await boot_held(app, pilot)

    run(scenario)


# --- snapshots: the main screens, on a fixed set of configs and scenarios ---------------

@pytest.fixture
def fixed_settings(tmp_path):
    configs, scenarios = tmp_path / "configs", tmp_path / "scenarios"
    configs.mkdir()
    scenarios.mkdir()
    shutil.copy(SETTINGS.default_config, configs / "default.yaml")
    (configs / "vga.yaml").write_text("display: vga\n")
    (scenarios / "boot.yaml").write_text("# placeholder: the sidebar lists names only\n")
    return dataclasses.replace(SETTINGS, configs_dir=configs, scenarios_dir=scenarios,
                               default_config=configs / "default.yaml")


def test_snapshot_start_screen(snap_compare, fixed_settings):
    assert snap_compare(KwastApp(fixed_settings), terminal_size=SIZE)


def test_snapshot_help(snap_compare, fixed_settings):
    assert snap_compare(KwastApp(fixed_settings), press=["f1"], terminal_size=SIZE)


def test_snapshot_debugger_pane(snap_compare, fixed_settings):
    async def show(pilot):
        pilot.app.query_one(TabbedContent).active = "debugger"
        await pilot.pause()

    assert snap_compare(KwastApp(fixed_settings), run_before=show, terminal_size=SIZE)


@pytest.mark.parametrize("pane", ["scheduler", "ipc", "servers-pane"])
def test_snapshot_state_panes_on_recorded_blocks(snap_compare, fixed_settings, pane):
    # The desktop held up, after "hello" was typed, and after F12 crashed ps2 and init restarted
    # it (tests/data/desktop-snapshots.json), fed to the app as its state feed would: each pane
    # in words, with rates from the kernel's own clock, so the picture is the same every run.
    from test_state_rates import snapshots

    async def show(pilot):
        for kernel in snapshots():
            pilot.app.post_message(StateFeed.Updated(kernel))
            await pilot.pause()
        pilot.app.query_one(TabbedContent).active = pane
        await pilot.pause()

    assert snap_compare(KwastApp(fixed_settings), run_before=show, terminal_size=SIZE)


def test_snapshot_failed_build(snap_compare, fixed_settings):
    failing = build.BuildStep("kernel", ["sh", "-c", "echo 'src/main.rs:3:5: error: no'; exit 101"], SETTINGS.root)

    # Fixed steps: the real list changes as the build grows.
    never_run = build.BuildStep("servers", ["true"], SETTINGS.root)
    app = KwastApp(fixed_settings, build_steps=[failing, never_run])

    async def fail(pilot):
        await pilot.press("ctrl+b")
        error = pilot.app.query_one("#build-error", Static)
        await until(pilot, lambda: "error: no" in str(error.render()), "the build to fail")
        await pilot.pause()

    assert snap_compare(app, run_before=fail, terminal_size=SIZE)


def test_a_scenario_chosen_in_the_sidebar_runs_and_passes():
    boot = SETTINGS.scenarios_dir / "boot.yaml"

    async def scenario():
        app = KwastApp(SETTINGS)
        async with app.run_test(size=SIZE) as pilot:
            scenarios = app.query_one("#scenarios")
            scenarios.focus()
            runs = app.query_one("#sidebar").scenarios
            first = next(run for run in runs if run.path == boot)  # a row per matrix combination
            scenarios.highlighted = runs.index(first)
            await pilot.press("enter", "ctrl+r")
            assert app.query_one(TabbedContent).active == "scenarios"
            results = app.query_one("#scenario-results", DataTable)
            await until(pilot, lambda: str(results.get_cell(first.label, "result")) in ("PASS", "FAIL"),
                        "the scenario to finish", timeout=120)
            log = list(app.query_one("#scenario-report").lines)
            assert str(results.get_cell(first.label, "result")) == "PASS", "\n".join(log)
            steps = [line for line in log if line.startswith(f"{first.label}: step ")]
            assert steps and steps[0].startswith(f"{first.label}: step 1/") and steps[0].endswith(": boot"), log
            assert len(steps) == int(steps[0].split("/")[1].split(":")[0]), "every step was reported as it started"

    run(scenario)


def test_the_ipc_view_shows_the_last_traces_summary(tmp_path):
    """The summary `kwast-bench trace` writes, here of the recorded desktop session."""
    from test_trace import _recorded
    from workbench import trace

    events, names, tsc_per_us = _recorded("trace-desktop-keys.json")
    trace.write(tmp_path / "trace" / "trace.json", events, names, tsc_per_us)

    async def scenario():
        app = KwastApp(dataclasses.replace(SETTINGS, build_dir=tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("ctrl+n", "ctrl+n")
            assert app.query_one(TabbedContent).active == "ipc"
            app.query_one("#endpoints", DataTable).focus()
            await pilot.press("t")
            table = app.query_one("#trace-summary", DataTable)
            await until(pilot, lambda: table.row_count == 1, "the summary's row")
            assert [str(cell) for cell in table.get_row_at(0)][:3] == ["endpoint 1 (console)", "2", "2"]
            assert "38 events, 0 dropped" in str(app.query_one("#trace-title", Label).render())
            await pilot.press("ctrl+q")

    run(scenario)


# --- replaying a recording, backwards too ---------------------------------------------

# Where a killed server is reported (tests/recorded/fault-killed.yaml kills fault_oob thrice).
SERVER_FINISH = "kwast_kernel::wasm::server::finish"


def registers_shown(app: KwastApp) -> dict[str, str]:
    table = app.query_one("#registers", DataTable)
    return dict(table.get_row_at(i) for i in range(table.row_count))


async def run_to_stop(app: KwastApp, pilot, key: str, stop: str, what: str) -> None:
    """Presses a run key, then waits for the next stop and checks it says `stop`."""
    pane, status = app.query_one(debugger.DebuggerPane), app.query_one("#gdb-status", Static)
    before = pane.stops_shown
    await pilot.press(key)
    await until(pilot, lambda: pane.stops_shown > before, what, timeout=120)
    assert str(status.render()).startswith(f"stopped: {stop}"), status.render()


def test_a_recording_opened_in_the_scenarios_pane_replays_in_the_console_and_gdb_goes_back(tmp_path):
    from test_replay import record

    folder = tmp_path / "artifacts" / "fault-killed"
    assert record(SETTINGS, "fault-killed", folder).passed
    recorded = (folder / "recording" / "serial.bin").read_bytes().decode().replace("\r", "")

    async def scenario():
        app = KwastApp(SETTINGS, recording_dirs=[tmp_path / "artifacts"])
        async with app.run_test(size=SIZE) as pilot:
            app.query_one(TabbedContent).active = "scenarios"
            recordings = app.query_one("#recordings", DataTable)
            assert [str(cell) for cell in recordings.get_row_at(0)][::2] == ["fault-killed", "PASS"]
            recordings.focus()
            await pilot.press("enter")
            status = app.query_one("#gdb-status", Static)
            await until(pilot, lambda: str(status.render()).startswith("stopped: attached"), "GDB on the replay")
            assert app.query_one(TabbedContent).active == "console"
            vm = app.query_one(VmStatus)
            assert vm.replaying == "fault-killed"
            console = app.query_one(SerialConsole)
            assert console.text == ""  # held at the first instruction

            await pilot.press("ctrl+g")  # a replay keeps GDB: this only goes to the breakpoint box
            assert app.focused.id == "breakpoint"
            await pilot.press(*SERVER_FINISH, "enter")
            await until(pilot, lambda: "breakpoint 1 at" in str(status.render()), "the breakpoint")
            assert app.query_one("#breakpoint", Input).value == ""  # set and listed: the box is free again
            await run_to_stop(app, pilot, "f5", "breakpoint 1 hit", "the replay to reach the kill")
            there, at = registers_shown(app), await vm.machine.replay_position()
            # The replayed console, in the console pane: the recording's, up to here.
            await until(pilot, lambda: "server fault_oob: fault_oob.cwasm ready" in console.text, "the replayed console")
            shown = console.text
            assert re.search(r"^Kwast \S+ booting$", shown, re.MULTILINE) and recorded.startswith(shown), shown

            await run_to_stop(app, pilot, "shift+f7", "end-stepping-range", "one instruction back")
            back = registers_shown(app)
            assert back["rip"] != there["rip"] and await vm.machine.replay_position() == at - 1
            # Going back replayed from the first instruction: the console written again, once.
            await until(pilot, lambda: console.text == shown, "the console as it was one instruction on")

            await run_to_stop(app, pilot, "f5", "breakpoint 1 hit", "forward to the kill again")
            assert registers_shown(app) == there and await vm.machine.replay_position() == at

            # On to the next kill, and back to this one (the workbench's reverse-continue).
            await run_to_stop(app, pilot, "f5", "breakpoint 1 hit", "the next kill")
            assert await vm.machine.replay_position() > at
            await run_to_stop(app, pilot, "shift+f5", "breakpoint 1 hit", "back to the kill before")
            assert registers_shown(app) == there and await vm.machine.replay_position() == at
            await until(pilot, lambda: console.text == shown, "the console as it was at that kill")
            await pilot.press("ctrl+q")
        # no_gdb_left_behind and no_qemu_left_behind (conftest) check both ended.

    run(scenario)


def test_a_path_without_a_recording_is_refused_in_the_scenarios_pane(tmp_path):
    async def scenario():
        app = KwastApp(SETTINGS, recording_dirs=[tmp_path])
        async with app.run_test(size=SIZE) as pilot:
            app.query_one(TabbedContent).active = "scenarios"
            assert app.query_one("#recordings", DataTable).row_count == 0
            app.query_one("#recording-path", Input).focus()
            await pilot.press(*str(tmp_path), "enter")
            error = str(app.query_one("#recording-error", Label).render())
            assert error == f"{tmp_path}: no recording here (record with `kwast-bench run --record`)"
            assert app.query_one(VmStatus).machine is None

    run(scenario)
