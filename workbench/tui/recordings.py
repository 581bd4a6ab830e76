"""The recordings in the scenarios pane: recorded scenario runs found under the app's recording
folders (`kwast-bench run --record`, `record: true`), and a box to open one by its path. Choosing
one posts `Open`; the app replays it (workbench/replay.py) with GDB attached."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label

from .. import replay


class RecordingList(Vertical):
    class Open(Message):
        def __init__(self, folder: Path) -> None:
            super().__init__()
            self.folder = folder

    def __init__(self, roots: list[Path], **kwargs) -> None:
        super().__init__(**kwargs)
        self.roots = roots

    def compose(self) -> ComposeResult:
        yield Label("Recordings: enter replays one under GDB", classes="section-title")
        table = DataTable(id="recordings", cursor_type="row")
        table.add_columns("recording", "scenario", "recorded", "where")
        yield table
        yield Input(placeholder="or the path of a recorded run's folder, enter replays it", id="recording-path")
        yield Label("", id="recording-error")

    def on_mount(self) -> None:
        self.rescan()

    def rescan(self) -> None:
        """Lists the recordings under the roots now (a row each, keyed by its folder)."""
        table = self.query_one("#recordings", DataTable)
        table.clear()
        for folder in replay.find(self.roots):
            try:
                recording = replay.Recording.load(replay.recording_folder(folder))
            except replay.ReplayError as error:
                table.add_row(folder.name, "", Text("unreadable", "red"), str(error), key=str(folder))
                continue
            verdict = Text("PASS", "green") if recording.passed else Text("FAIL", "red")
            table.add_row(folder.name, recording.scenario_path, verdict, recording.where or "", key=str(folder))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Open(Path(event.row_key.value)))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        folder = Path(event.value.strip()).expanduser()
        error = self.query_one("#recording-error", Label)
        if not (replay.recording_folder(folder) / "recording.json").is_file():
            error.update(f"{folder}: no recording here (record with `kwast-bench run --record`)")
            return
        error.update("")
        self.post_message(self.Open(folder))
