"""The Kwast workbench app: sidebar, panes, the VM status bar and the footer of key bindings.

The app wires panes together: it turns their messages (a machine booted, serial text, a kernel
state read, a config chosen) into calls on the panes that show them. Every binding is also a
command-palette entry; F1 shows the keys and the focused pane's help.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Iterable

from qemu.qmp import QMPError
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, HelpPanel, TabbedContent, TabPane

from .. import build, config
from ..config import HardwareConfig
from ..qemu import QemuError
from ..qemu.keys import KeyNameError
from ..scenario import runner
from ..settings import Settings
from ..state_words import explain
from ..yamlmodel import ConfigError
from .build_pane import BuildPane
from .console import SerialConsole
from .debugger import BACKWARDS, DebuggerPane
from .feed import StateFeed
from .ipc import IpcView
from .recordings import RecordingList
from .scenarios import ScenarioPane
from .scheduler import SchedulerView
from .servers import ServersView
from .sidebar import Sidebar
from .vm import VmError, VmStatus

PANES = [("console", "Console"), ("scheduler", "Scheduler"), ("ipc", "IPC"), ("build", "Build"),
         ("debugger", "Debugger"), ("scenarios", "Scenarios")]


class KwastApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "kwast-bench"
    BINDINGS = [
        Binding("f1", "toggle_help", "Help"),
        Binding("f2", "boot", "Boot"),
        Binding("f3", "pause", "Pause"),
        Binding("f4", "reset", "Reset"),
        Binding("ctrl+o", "stop_vm", "Off"),
        Binding("ctrl+b", "build", "Build"),
        Binding("ctrl+f", "search", "Search"),
        Binding("ctrl+t", "type", "Type"),
        Binding("ctrl+g", "gdb", "GDB"),
        # GDB's run keys, shown while it is attached; the reverse ones go with a replay.
        Binding("f5", "debug('continue')", "Cont"),
        Binding("shift+f5", "debug('reverse-continue')", "Back cont"),
        Binding("f6", "interrupt", "Intr"),
        Binding("f7", "debug('step')", "Step"),
        Binding("shift+f7", "debug('reverse-stepi')", "Back stepi"),
        Binding("f8", "debug('next')", "Next"),
        Binding("f9", "debug('finish')", "Finish"),
        Binding("ctrl+r", "run_scenario", "Run"),
        Binding("ctrl+l", "run_all_scenarios", "Run all"),
        Binding("f10", "screendump", "Dump"),
        Binding("f11", "savevm", "Save"),
        Binding("f12", "loadvm", "Load"),
        Binding("ctrl+n", "next_pane", "Pane"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, settings: Settings, config_path: Path | None = None, cmdline: str = "",
                 build_steps: list[build.BuildStep] | None = None, recording_dirs: list[Path] | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.build_steps = build_steps or build.steps(settings)
        # Where the scenarios pane looks for recordings: scenario runs', and any kept with the tests.
        self.recording_dirs = recording_dirs or [settings.build_dir / "scenario-artifacts", settings.root / "tests" / "recorded"]
        self.cmdline = cmdline
        self.config_path = Path(config_path or settings.default_config)
        self.config: HardwareConfig | None = None
        # Threads' names and servers across snapshots, to name events of threads gone since.
        self._threads_known: dict[int, tuple[str, str]] = {}

    def compose(self) -> ComposeResult:
        yield VmStatus(self.settings, id="vm")
        with Horizontal(id="main"):
            yield Sidebar(self.settings.configs_dir, self.settings.scenarios_dir, self.cmdline, id="sidebar")
            with TabbedContent(id="panes"):
                with TabPane("Console", id="console"):
                    yield SerialConsole(id="serial")
                with TabPane("Scheduler", id="scheduler"):
                    yield SchedulerView(id="threads-view")
                with TabPane("IPC", id="ipc"):
                    yield IpcView(id="ipc-view")
                with TabPane("Servers", id="servers-pane"):
                    yield ServersView(id="servers-view")
                with TabPane("Build", id="build"):
                    yield BuildPane(self.build_steps, id="build-pane")
                with TabPane("Debugger", id="debugger"):
                    yield DebuggerPane(id="debugger-pane")
                with TabPane("Scenarios", id="scenarios"):
                    yield ScenarioPane(self.settings, self.recording_dirs, id="scenario-pane")
        yield StateFeed(id="feed")
        yield Footer()

    def on_mount(self) -> None:
        self._choose(self.config_path)

    def _choose(self, path: Path) -> None:
        try:
            self._select(config.load(path))
        except ConfigError as error:
            self.notify(f"{error}\nfix it, or choose another config in the sidebar", severity="error", timeout=30)

    def _select(self, chosen: HardwareConfig) -> None:
        self.config = chosen
        self.query_one(VmStatus).config_name = chosen.path.stem if chosen.path else "?"
        if chosen.path is not None:
            self.query_one(Sidebar).highlight(chosen.path)

    # --- palette and help ---------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        # Every binding of the app and of the focused pane, by its footer name.
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if binding.show and binding.description and binding.action != "command_palette":
                yield SystemCommand(binding.description, f"{key}: {binding.action}",
                                    lambda node=active.node, action=binding.action: self.run_action(action, node))
        for pane, title in PANES:
            yield SystemCommand(f"Show {title}", f"switch to the {title} pane",
                                lambda pane=pane: self._show_pane(pane))

    def action_toggle_help(self) -> None:
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_next_pane(self) -> None:
        tabs = self.query_one(TabbedContent)
        ids = [pane for pane, _ in PANES]
        self._show_pane(ids[(ids.index(tabs.active) + 1) % len(ids)])

    def _show_pane(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_search(self) -> None:
        self._show_pane("console")
        self.query_one(SerialConsole).focus_search()

    def action_type(self) -> None:
        self._show_pane("console")
        self.query_one(SerialConsole).focus_type()

    def action_gdb(self) -> None:
        """Attaches GDB (or detaches it), in the debugger pane with the breakpoint box focused."""
        self._show_pane("debugger")
        debugger = self.query_one(DebuggerPane)
        debugger.focus_location()
        debugger.toggle_attach()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("debug", "interrupt"):
            return any(debugger.attached for debugger in self.query(DebuggerPane))
        return True

    def action_debug(self, how: str) -> None:
        debugger = self.query_one(DebuggerPane)
        if how in BACKWARDS and debugger.ready(how):
            # Going back replays from the first instruction, writing the console again: the
            # machine's bar holds that back until GDB stops (now, before GDB sends the guest back).
            self.query_one(VmStatus).going_back()
        debugger.run(how)

    async def on_debugger_pane_run_ended(self, event: DebuggerPane.RunEnded) -> None:
        await self.query_one(VmStatus).went_back(event.stopped)

    def action_interrupt(self) -> None:
        self.query_one(DebuggerPane).interrupt()

    def on_debugger_pane_attach_changed(self, event: DebuggerPane.AttachChanged) -> None:
        self.refresh_bindings()

    # --- machine ------------------------------------------------------------------------

    async def action_boot(self) -> None:
        if self.config is None:
            self.notify("no usable config: choose one in the sidebar", severity="error")
            return
        self.query_one(SerialConsole).clear()
        await self._vm_call(self.query_one(VmStatus).boot(self.config, self.query_one(Sidebar).cmdline))

    async def action_pause(self) -> None:
        await self._vm_call(self.query_one(VmStatus).pause_or_continue())

    async def action_reset(self) -> None:
        await self._vm_call(self.query_one(VmStatus).reset())

    async def action_stop_vm(self) -> None:
        await self.query_one(VmStatus).stop()

    async def action_screendump(self) -> None:
        path = await self._vm_call(self.query_one(VmStatus).screendump())
        if path is not None:
            self.notify(f"screendump saved to {path}")

    async def action_savevm(self) -> None:
        if await self._vm_call(self.query_one(VmStatus).savevm(), done=True):
            self.notify("VM state saved: F12 loads it")

    async def action_loadvm(self) -> None:
        if await self._vm_call(self.query_one(VmStatus).loadvm(), done=True):
            self.notify("VM state loaded")

    async def _vm_call(self, call, done: object = None) -> object:
        """Awaits a VmStatus call; a failure becomes a notification saying what to do."""
        try:
            result = await call
        except (VmError, QemuError, KeyNameError) as error:  # what the user can fix, said as such
            self.notify(str(error), severity="error")
            return None
        except (QMPError, asyncio.TimeoutError) as error:  # QEMU's own words are the useful part
            self.notify(f"QEMU: {error or 'no answer'}", severity="error")
            return None
        return result if done is None else done

    def on_vm_status_booted(self, event: VmStatus.Booted) -> None:
        debugger = self.query_one(DebuggerPane)
        debugger.set_target(event.elf, event.machine.gdb_socket, event.no_reverse, replay=event.replay is not None,
                            setup=event.gdb_setup)
        if event.replay is not None:
            debugger.toggle_attach()  # at the first instruction, where QEMU snapshots for going back
            self.notify("replay held at its first instruction, GDB attached: set breakpoints (ctrl+g), F5 runs it"
                        + ("" if event.no_reverse is None else f"; it cannot go back: {event.no_reverse}"), timeout=15)
        self.run_worker(self.query_one(StateFeed).follow(event.elf, event.machine.ram_path), group="feed")

    # Machine and feed messages can still arrive while the app takes its panes down on the way
    # out: these handlers use query(), which finds nothing then, rather than query_one().

    def on_vm_status_serial(self, event: VmStatus.Serial) -> None:
        for console in self.query(SerialConsole):
            if event.replace:
                console.clear()
            console.write(event.text)

    def on_vm_status_ended(self, event: VmStatus.Ended) -> None:
        for feed in self.query(StateFeed):
            feed.stop()
        for debugger in self.query(DebuggerPane):
            debugger.machine_ended()
        for scheduler in self.query(SchedulerView):
            scheduler.waiting(f"machine off: {event.description}")
        self.notify(f"machine off: {event.description}")

    def on_state_feed_updated(self, event: StateFeed.Updated) -> None:
        said = explain(event.kernel, known=self._threads_known)
        for view in [*self.query(SchedulerView), *self.query(IpcView)]:
            view.show(event.kernel, said)
        for servers in self.query(ServersView):
            servers.show(said)

    def on_state_feed_waiting(self, event: StateFeed.Waiting) -> None:
        for scheduler in self.query(SchedulerView):
            scheduler.waiting(event.reason)

    async def on_serial_console_type_text(self, event: SerialConsole.TypeText) -> None:
        sent = await self._vm_call(self.query_one(VmStatus).send_text(event.text))
        self.query_one(SerialConsole).typed("not sent" if sent is None else f"sent {sent} keys")

    def on_sidebar_config_selected(self, event: Sidebar.ConfigSelected) -> None:
        self._select(event.config)
        self.notify(f"config {event.config.path.name} selected: F2 boots it")

    # --- build --------------------------------------------------------------------------

    def action_build(self) -> None:
        self._show_pane("build")
        if not self.query_one(BuildPane).start():
            self.notify("a build is already running")

    def on_build_pane_finished(self, event: BuildPane.Finished) -> None:
        if event.ok:
            self.notify("build done: F2 boots the new image")
        else:
            self.notify(f"build failed: {event.error}", severity="error", timeout=15)

    # --- scenarios ----------------------------------------------------------------------

    def action_run_scenario(self) -> None:
        chosen = self.query_one(Sidebar).scenario
        if chosen is None:
            self.notify("no scenario selected: pick one in the sidebar (enter), then ctrl+r", severity="warning")
            return
        self._run_scenarios([chosen])

    def action_run_all_scenarios(self) -> None:
        self._run_scenarios(self.query_one(Sidebar).scenarios)

    async def on_recording_list_open(self, event: RecordingList.Open) -> None:
        """Replays a recording in the console pane, GDB attached (once the machine is up)."""
        # Held at its first instruction, the replay writes nothing before GDB lets it run.
        if await self._vm_call(self.query_one(VmStatus).replay(event.folder), done=True):
            console = self.query_one(SerialConsole)
            console.clear()
            self._show_pane("console")
            console.focus_output()  # focus left in the scenarios pane would show that pane again

    def _run_scenarios(self, runs: list[runner.Run]) -> None:
        self._show_pane("scenarios")
        if not self.query_one(ScenarioPane).start(runs):
            self.notify("scenarios are already running, or there are none", severity="warning")

    # --- leaving ------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Ends GDB and QEMU, then the app."""
        self.query_one(DebuggerPane).close_now()
        await self.query_one(VmStatus).stop()
        self.exit()


def run(settings: Settings, config_path: Path | None = None, cmdline: str = "") -> int:
    KwastApp(settings, config_path, cmdline).run()
    return 0
