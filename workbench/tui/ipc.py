"""The IPC view: endpoints with message, byte and error counters, a sparkline of the message
rate, and the kernel's recent events, new ones marked and traps and restarts in red; on `t`,
the last `kwast-bench trace`'s summary (calls per endpoint, median call-to-reply time)."""

from __future__ import annotations

import collections
import json
import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Sparkline

from ..state import KernelState

ENDPOINT_COLUMNS = ["id", "owner", "waiters", "messages", "bytes", "errors"]
EVENT_COLUMNS = ["#", "kind", "thread", "a", "b"]
ALARMING = {"Trap", "Restart", "Kill"}
EVENTS_SHOWN = 32
TRACE_COLUMNS = ["endpoint", "calls", "replies", "median call to reply (TSC)"]


class IpcView(Vertical):
    HELP = """\
## IPC and events
Endpoints with their counters, the total message rate (messages per second, last minute),
and the kernel's newest events: new since the last refresh in bold, traps, kills and restarts in red.

- **t** shows the last trace's summary (`kwast-bench trace`, build/trace/trace.summary.json):
  calls per endpoint and the median time from call to reply, in TSC ticks (guest instructions
  under `-icount shift=0`)
"""
    BINDINGS = [("t", "trace_summary", "Trace summary")]

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
        yield Label("last trace: press t", id="trace-title", classes="section-title")
        summary = DataTable(id="trace-summary", cursor_type="row")
        summary.add_columns(*TRACE_COLUMNS)
        yield summary

    def action_trace_summary(self) -> None:
        path = self.app.settings.build_dir / "trace" / "trace.summary.json"
        title = self.query_one("#trace-title", Label)
        table = self.query_one("#trace-summary", DataTable)
        table.clear()
        try:
            summary = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            title.update(f"last trace: none readable ({error}); run `kwast-bench trace`")
            return
        title.update(f"last trace: {path} ({summary['events']} events, {summary['dropped']} dropped)")
        for row in summary["endpoints"]:
            latency = row["median_latency"]
            table.add_row(row["name"], str(row["calls"]), str(row["replies"]), "-" if latency is None else f"{latency:.0f}")

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
