"""The IPC view: endpoints by name with their callers and totals, each with its call rate and a
sparkline of it, the total call rate, and the kernel's recent events in words, filterable by
server: new ones marked, traps, kills and restarts in red; on `t`, the last `kwast-bench trace`'s
summary (calls per endpoint, median call-to-reply time)."""

from __future__ import annotations

import collections
import json

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Input, Label, Sparkline

from ..state import KernelState
from ..state_rates import RateMeter
from ..state_words import Explained
from .history import History

ENDPOINT_COLUMNS = [("name", "endpoint"), ("owner", "owner"), ("receivers", "receivers"), ("callers", "callers"),
                    ("calls", "calls"), ("rate", "calls/s"), ("trend", "rate"), ("replies", "replies"),
                    ("bytes", "bytes"), ("errors", "errors"), ("peer_died", "peer died")]
EVENT_COLUMNS = [("number", "#"), ("age", "age ms"), ("event", "event")]
ALARMING = {"Trap", "Restart", "Kill"}
EVENTS_SHOWN = 32
TRACE_COLUMNS = ["endpoint", "calls", "replies", "median call to reply (TSC)"]


class IpcView(Vertical):
    HELP = """\
## IPC and events
Endpoints by name: who waits to receive on each, whose calls are queued or being answered,
totals since it was made and its call rate (calls per second, with a sparkline); the total call
rate over the last minute; the kernel's newest events in words (`ps2 → console call 1 bytes`),
new since the last refresh in bold, traps, kills and restarts in red. Type a server's name in
the filter to see only its events.

- **t** shows the last trace's summary (`kwast-bench trace`, build/trace/trace.summary.json):
  calls per endpoint and the median time from call to reply, in TSC ticks (guest instructions
  under `-icount shift=0`)
"""
    BINDINGS = [("t", "trace_summary", "Trace summary")]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rates: collections.deque[float] = collections.deque([0.0], maxlen=240)
        self._meter = RateMeter()
        self._history = History()
        self._events_seen = 0
        self._said: Explained | None = None
        self._kernel: KernelState | None = None

    def compose(self) -> ComposeResult:
        yield Label("call rate: -", id="rate")
        yield Sparkline(list(self._rates), id="rate-sparkline")
        endpoints = DataTable(id="endpoints", cursor_type="row")
        for key, heading in ENDPOINT_COLUMNS:
            endpoints.add_column(heading, key=key)
        yield endpoints
        yield Label("recent events", classes="section-title")
        yield Input(placeholder="only events of this server (empty: all)", id="event-filter")
        events = DataTable(id="events", cursor_type="row")
        for key, heading in EVENT_COLUMNS:
            events.add_column(heading, key=key)
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

    def show(self, kernel: KernelState, said: Explained) -> None:
        rates = self._meter.add(said).calls
        self._history.add(rates)
        self._rates.append(sum(rates.values()))
        self.query_one("#rate", Label).update(
            f"call rate: {self._rates[-1]:.0f}/s   endpoints: {len(said.endpoints)}"
            + (f" ({kernel.endpoints_dropped} not shown)" if kernel.endpoints_dropped else ""))
        self.query_one("#rate-sparkline", Sparkline).data = list(self._rates)

        endpoints = self.query_one("#endpoints", DataTable)
        endpoints.clear()
        for e in said.endpoints:
            values = {**vars(e), "receivers": " ".join(e.receivers), "callers": " ".join(e.callers),
                      "rate": f"{rates.get(e.id, 0):.0f}", "trend": self._history.sparkline(e.id)}
            endpoints.add_row(*(str(values[key]) for key, _ in ENDPOINT_COLUMNS), key=str(e.id))

        self._kernel, self._said = kernel, said
        if kernel.events_written != self._events_seen:
            self._show_events()

    @on(Input.Changed, "#event-filter")
    def _filter_changed(self) -> None:
        if self._said is not None:
            self._show_events(refresh=True)

    def _show_events(self, refresh: bool = False) -> None:
        kernel, said = self._kernel, self._said
        wanted = self.query_one("#event-filter", Input).value.strip()
        table = self.query_one("#events", DataTable)
        table.clear()
        first = kernel.events_written - len(said.events)  # number of the oldest event held
        numbered = [(n, e) for n, e in enumerate(said.events, first) if not wanted or wanted in (e.server, e.text.split()[0])]
        seen = self._events_seen if not refresh else kernel.events_written
        for number, event in reversed(numbered[-EVENTS_SHOWN:]):
            style = ("bold red" if event.kind in ALARMING else "") + (" bold" if number >= seen else "")
            age = "" if event.age_us is None else f"{event.age_us / 1000:.1f}"
            table.add_row(*(Text(str(v), style=style.strip()) for v in (number, age, event.text)))
        self._events_seen = kernel.events_written
