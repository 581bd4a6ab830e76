"""The sidebar: hardware configs and scenarios found in the repository, and extra kernel
command-line words for the next boot. Choosing a config loads it; a bad one shows its
file:line error here instead of being selected."""

from __future__ import annotations

import os
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from .. import config
from ..config import HardwareConfig
from ..scenario import runner
from ..yamlmodel import ConfigError


class Sidebar(Vertical):
    HELP = """\
## Sidebar
- **Configs**: hardware configs in `configs/`; **enter** selects one for the next boot.
- **Scenarios**: scenarios in `scenarios/`, a row per matrix combination; **enter** selects one.
- **Kernel command line**: extra words for the next boot, e.g. `hold` or `test=NAME`.
"""

    class ConfigSelected(Message):
        def __init__(self, config: HardwareConfig) -> None:
            super().__init__()
            self.config = config

    def __init__(self, configs_dir: Path, scenarios_dir: Path, cmdline: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.configs = sorted(configs_dir.glob("*.yaml"))
        self.scenarios = runner.load_all(sorted(scenarios_dir.glob("*.yaml")))
        self._cmdline = cmdline
        self.scenario: runner.Run | None = None

    def compose(self) -> ComposeResult:
        yield Label("Configs", classes="sidebar-title")
        yield OptionList(*(Option(p.stem, id=str(p)) for p in self.configs), id="configs")
        yield Static("", id="config-error")
        yield Label("Scenarios", classes="sidebar-title")
        scenarios = [Option(r.label, id=r.label) for r in self.scenarios] or [Option("none yet", disabled=True)]
        yield OptionList(*scenarios, id="scenarios")
        yield Static("", id="scenario-chosen")
        yield Label("Kernel command line", classes="sidebar-title")
        yield Input(self._cmdline, placeholder="e.g. hold", id="cmdline")

    @property
    def cmdline(self) -> str:
        return self.query_one("#cmdline", Input).value.strip()

    def highlight(self, path: Path) -> None:
        """Shows `path` as the selected config, without loading it again."""
        configs = self.query_one("#configs", OptionList)
        if path in self.configs:
            configs.highlighted = self.configs.index(path)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "scenarios":
            self.scenario = next(r for r in self.scenarios if r.label == event.option.id)
            self.query_one("#scenario-chosen", Static).update(f"selected: {self.scenario.label}")
            return
        path = Path(event.option.id)
        error = self.query_one("#config-error", Static)
        try:
            # Relative to where the user is, so errors name the file as they would type it.
            chosen = config.load(Path(os.path.relpath(path)))
        except ConfigError as failure:
            error.update(f"{failure}\nfix the file, then select it again")
            error.add_class("-shown")
            return
        error.update("")
        error.remove_class("-shown")
        self.post_message(self.ConfigSelected(chosen))
