"""The serial console: the guest's COM1 output, a search over it, and a line that types into the
guest through its PS/2 keyboard (the machine's `send_keys`)."""

from __future__ import annotations

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Input, Label, Log


class _Matches(Highlighter):
    """Marks every occurrence of the search term (case-insensitive)."""

    term = ""

    def highlight(self, text: Text) -> None:
        if self.term:
            text.highlight_words([self.term], "reverse", case_sensitive=False)


class SerialConsole(Vertical):
    HELP = """\
## Serial console
The guest's COM1 output, as it arrives.

- **ctrl+f** search: type a word, **enter** jumps to the next line holding it (all matches are marked).
- **ctrl+t** type into the guest: **enter** sends the line as PS/2 key presses, then Enter;
  `<f12>`, `<ctrl-c>`, `<esc>` in the line press that key (QEMU's key names).
"""
    class TypeText(Message):
        """The user asked to type this into the guest."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._match_line = -1

    def compose(self) -> ComposeResult:
        log = Log(id="serial-log", highlight=True, max_lines=20_000)
        log.highlighter = _Matches()
        yield log
        with Horizontal(id="console-inputs"):
            yield Input(placeholder="search the console (ctrl+f)", id="console-search")
            yield Label("", id="console-matches")
        with Horizontal(id="console-type-row"):
            yield Input(placeholder="type into the guest (ctrl+t), enter sends", id="console-type")
            yield Label("", id="console-typed")

    @property
    def log_widget(self) -> Log:
        return self.query_one("#serial-log", Log)

    @property
    def text(self) -> str:
        """Everything shown so far, including a line still being written."""
        return "\n".join(self.log_widget.lines)

    def write(self, text: str) -> None:
        self.log_widget.write(text)

    def clear(self) -> None:
        self.log_widget.clear()
        self._match_line = -1

    def typed(self, outcome: str) -> None:
        """Shows what became of the last line typed into the guest."""
        self.query_one("#console-typed", Label).update(outcome)

    def focus_output(self) -> None:
        self.log_widget.focus()

    def focus_search(self) -> None:
        self.query_one("#console-search", Input).focus()

    def focus_type(self) -> None:
        self.query_one("#console-type", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "console-search":
            log = self.log_widget
            log.highlighter.term = event.value
            log.notify_style_update()  # drops its cache of highlighted lines
            log.refresh()
            self._match_line = -1
            self._count_matches()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "console-search":
            self._next_match(event.value)
        elif event.input.id == "console-type":
            self.post_message(self.TypeText(event.value + "\n"))
            event.input.clear()

    def _count_matches(self) -> None:
        term = self.log_widget.highlighter.term.lower()
        count = sum(term in line.lower() for line in self.log_widget.lines) if term else 0
        self.query_one("#console-matches", Label).update(f"{count} lines" if term else "")

    def _next_match(self, term: str) -> None:
        lines = self.log_widget.lines
        if not term:
            return
        order = [*range(self._match_line + 1, len(lines)), *range(0, self._match_line + 1)]
        for index in order:
            if term.lower() in lines[index].lower():
                self._match_line = index
                self.log_widget.scroll_to(y=index, animate=False)
                self.query_one("#console-matches", Label).update(f"line {index + 1}")
                return
        self.query_one("#console-matches", Label).update("no match")
