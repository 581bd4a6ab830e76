"""The IPC view: endpoints with message, byte and error counters, a sparkline of the message
rate, and the kernel's recent events, new ones marked and traps and restarts in red."""

from __future__ import annotations

import collections
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Sparkline

from ..state import KernelState

ENDPOINT_COLUMNS = ["id", "owner", "waiters", "messages", "bytes", "errors"]
EVENT_COLUMNS = ["#", "kind", "thread", "a", "b"]
ALARMING = {"Trap", "Restart"}
EVENTS_SHOWN = 32


class IpcView(Vertical):
    HELP = """\
## IPC and events
Endpoints with their counters, the total message rate (messages per second, last minute),
and the kernel's newest events: new since the last refresh in bold, traps and restarts in red.
"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rates: collections.deque[float] = collections.deque([0.0], maxlen=240)
        self._last: tuple[float, int] | None = None  # (time, total messages)
        self._events_seen = 0

    def compose(self) -> ComposeResult:
        yield Label("message rate: -", id="rate")
        yield Sparkline(list(self._rates), id="rate-sparkline")
        endpoints = DataTable(id="endpoints", cursor_type="row")
        endpoints.add_columns(*ENDPOINT_COLUMNS)
        yield endpoints
        yield Label("recent events", classes="section-title")
        events = DataTable(id="events", cursor_type="row")
        events.add_columns(*EVENT_COLUMNS)
        yield events

    def show(self, kernel: KernelState) -> None:
        total = sum(endpoint.messages for endpoint in kernel.endpoints)
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            self._rates.append(max(0, total - self._last[1]) / (now - self._last[0]))
        self._last = (now, total)
        self.query_one("#rate", Label).update(
            f"message rate: {self._rates[-1]:.0f}/s   endpoints: {len(kernel.endpoints)}"
            + (f" ({kernel.endpoints_dropped} not shown)" if kernel.endpoints_dropped else ""))
        self.query_one("#rate-sparkline", Sparkline).data = list(self._rates)

        endpoints = self.query_one("#endpoints", DataTable)
        endpoints.clear()
        for endpoint in kernel.endpoints:
            endpoints.add_row(*(str(endpoint[c]) for c in ENDPOINT_COLUMNS))

        if kernel.events_written != self._events_seen:
            self._show_events(kernel)

    def _show_events(self, kernel: KernelState) -> None:
        table = self.query_one("#events", DataTable)
        table.clear()
        first = kernel.events_written - len(kernel.events)  # number of the oldest event held
        for number, event in reversed(list(enumerate(kernel.events, first))[-EVENTS_SHOWN:]):
            kind = str(event.kind)
            style = ("bold red" if kind in ALARMING else "") + (" bold" if number >= self._events_seen else "")
            table.add_row(*(Text(str(v), style=style.strip()) for v in (number, kind, event.thread, event.a, event.b)))
        self._events_seen = kernel.events_written
