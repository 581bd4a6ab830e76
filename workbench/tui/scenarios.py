"""The scenario pane: runs the scenario selected in the sidebar, or all of them, with the
scenario runner (workbench.scenario), one row each with pass/fail, and a failure's report.
Each scenario boots its own QEMU; the runner ends it. Below, the recorded runs, to replay."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Log, Static

from ..scenario import runner
from ..settings import Settings
from .recordings import RecordingList


class ScenarioPane(Vertical):
    HELP = """\
## Scenarios
**ctrl+r** runs the scenario selected in the sidebar; **ctrl+l** runs all of them, one at a time
(a matrix scenario is a row per combination, `faults[div_zero]`).
Each row shows the step under way; the log below follows every step, and a failure shows
where and why, the last serial lines and the kernel state.

**Recordings** lists recorded runs (`kwast-bench run --record`, `record: true`); **enter** on
one, or its folder's path typed in the box, replays it in the console pane with GDB attached,
held at its first instruction (the Debugger pane's keys, backwards too).
"""

    def __init__(self, settings: Settings, recording_dirs: list[Path], **kwargs) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.recording_dirs = recording_dirs
        self.running = False

    def compose(self) -> ComposeResult:
        yield Static("select a scenario in the sidebar, then ctrl+r (or ctrl+l for all)", id="scenario-status")
        table = DataTable(id="scenario-results", cursor_type="row")
        for key in ("scenario", "result", "seconds", "where"):
            table.add_column(key, key=key)
        yield table
        yield Log(id="scenario-report")
        yield RecordingList(self.recording_dirs, id="recording-list")

    def start(self, runs: list[runner.Run]) -> bool:
        """Runs `runs` (a row each, keyed by label) unless a run is under way; says whether it started."""
        if self.running or not runs:
            return False
        self.running = True
        table = self.query_one("#scenario-results", DataTable)
        table.clear()
        for run in runs:
            table.add_row(run.label, "waiting", "", "", key=run.label)
        self.query_one("#scenario-report", Log).clear()
        self.query_one("#scenario-status", Static).update(f"running {len(runs)} scenario(s)...")
        self._run(runs)
        return True

    @work(group="scenarios")
    async def _run(self, runs: list[runner.Run]) -> None:
        folders = runner.artifact_dirs(runs, self.settings.build_dir / "scenario-artifacts")
        table = self.query_one("#scenario-results", DataTable)
        report = self.query_one("#scenario-report", Log)
        passed = 0
        try:
            for run, folder in zip(runs, folders):
                table.update_cell(run.label, "result", "running")

                def on_step(number: int, total: int, what: str, label: str = run.label) -> None:
                    table.update_cell(label, "result", f"step {number}/{total}")
                    table.update_cell(label, "where", what)
                    report.write_line(f"{label}: step {number}/{total}: {what}")

                result = await runner.run(run, self.settings, folder, on_step)
                passed += result.passed
                table.update_cell(run.label, "result", Text("PASS", "bold green") if result.passed
                                  else Text("FAIL", "bold red"))
                table.update_cell(run.label, "seconds", f"{result.seconds:.1f}")
                table.update_cell(run.label, "where", result.where or "")
                if not result.passed:
                    report.write_lines(result.report().splitlines())
        finally:
            self.running = False
            self.query_one(RecordingList).rescan()  # a run may have recorded
        self.query_one("#scenario-status", Static).update(f"{passed} of {len(runs)} passed")
