"""The build pane: `workbench.build` steps run in a thread, each with its progress bar, the
compiler's output below, and the first error of a failed build on top. A failed build leaves
the last good image in place (cargo and make replace their outputs only on success), so the
machine stays bootable."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.widgets import Label, Log, ProgressBar, Static

from .. import build


class BuildPane(Vertical):
    HELP = """\
## Build
**ctrl+b** builds the kernel (cargo) and the wasm servers (make), incrementally.
A failed build shows its first error on top and keeps the previous image bootable.
"""

    class Finished(Message):
        def __init__(self, ok: bool, error: str | None) -> None:
            super().__init__()
            self.ok, self.error = ok, error

    def __init__(self, steps: list[build.BuildStep], **kwargs) -> None:
        super().__init__(**kwargs)
        self.steps = steps
        self.building = False

    def compose(self) -> ComposeResult:
        yield Static("", id="build-error")
        with Grid(id="build-steps"):
            for step in self.steps:
                yield Label(step.name)
                # A step's length is unknown until it ends: idle bars sit at 0 of 1, not pulsing.
                yield ProgressBar(total=1, show_eta=False, id=f"progress-{step.name}")
                yield Label("not run", id=f"state-{step.name}", classes="step-state")
        yield Log(id="build-log", max_lines=20_000)

    def start(self) -> bool:
        """Starts a build unless one is running; says whether it started."""
        if self.building:
            return False
        self.building = True
        error = self.query_one("#build-error", Static)
        error.update("")
        error.remove_class("-shown")
        self.query_one("#build-log", Log).clear()
        for step in self.steps:
            self._show(step, "waiting", total=1, progress=0)
        self._build()
        return True

    def _show(self, step: build.BuildStep, state: str, **progress) -> None:
        self.query_one(f"#progress-{step.name}", ProgressBar).update(**progress)
        label = self.query_one(f"#state-{step.name}", Label)
        label.update(state)
        label.set_classes(f"step-state -{state}")

    @work(thread=True, exclusive=True, group="build")
    def _build(self) -> None:
        call = self.app.call_from_thread
        log = self.query_one("#build-log", Log)
        try:
            for step in self.steps:
                call(self._show, step, "running", total=None)
                build.run_step(step, on_line=lambda line: call(log.write_line, line))
                call(self._show, step, "done", total=1, progress=1)
        except build.BuildError as error:
            call(self._failed, error)
            return
        call(self._finished)

    def _failed(self, error: build.BuildError) -> None:
        self.building = False
        self._show(error.step, "failed", total=1, progress=0)
        for step in self.steps[self.steps.index(error.step) + 1:]:
            self._show(step, "skipped", total=1, progress=0)
        shown = self.query_one("#build-error", Static)
        shown.update(f"{error}\nthe previous image is still bootable; fix this and build again (ctrl+b)")
        shown.add_class("-shown")
        self.post_message(self.Finished(False, error.first_error or str(error)))

    def _finished(self) -> None:
        self.building = False
        self.post_message(self.Finished(True, None))
