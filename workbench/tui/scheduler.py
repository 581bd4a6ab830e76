"""The scheduler view: every kernel thread (server, state, what it waits for in words, CPU time
and a sparkline of its CPU share) and each CPU's current thread and idle share, from the live
state feed (`state_words.explain`)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..state import KernelState
from ..state_rates import RateMeter
from ..state_words import Explained
from .history import History

COLUMNS = [("id", "id"), ("name", "name"), ("server", "server"), ("state", "state"), ("waits", "waits for"),
           ("run_ticks", "run ticks"), ("cpu", "cpu %"), ("trend", "cpu"), ("switches", "switches")]


class SchedulerView(Vertical):
    HELP = """\
## Scheduler
Kernel threads and CPUs, read from guest memory four times a second without pausing the guest:
each thread's server, what it waits for (`receive on endpoint console`, `reply from console`,
`wait on notification irq1`), its CPU share now and over the last few seconds. The running
thread is bold; rows change in place, so the cursor stays where you put it.
"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._meter = RateMeter()
        self._cpu = History()

    def compose(self) -> ComposeResult:
        yield Static("no machine: boot one (F2)", id="cpus")
        table = DataTable(id="threads", cursor_type="row", zebra_stripes=True)
        for key, heading in COLUMNS:
            table.add_column(heading, key=key)
        yield table

    def waiting(self, reason: str) -> None:
        self.query_one("#cpus", Static).update(reason)

    def show(self, kernel: KernelState, said: Explained) -> None:
        names = {thread.id: thread.name for thread in said.threads}
        self.query_one("#cpus", Static).update("   ".join(
            f"cpu{cpu.index}: running {names.get(cpu.current_thread, cpu.current_thread)}, "
            f"idle {100 * cpu.idle_ticks // max(cpu.ticks, 1)}% of {cpu.ticks} ticks"
            for cpu in kernel.cpus))
        shares = self._meter.add(said).thread_cpu
        self._cpu.add(shares)
        table = self.query_one("#threads", DataTable)
        seen = set()
        for thread in said.threads:
            key = str(thread.id)
            seen.add(key)
            style = "bold" if thread.state == "Running" else ""
            values = {"id": thread.id, "name": thread.name, "server": thread.server, "state": thread.state,
                      "waits": thread.waits, "run_ticks": thread.cpu_ticks, "cpu": f"{shares.get(thread.id, 0):.0f}",
                      "trend": self._cpu.sparkline(thread.id), "switches": thread.switches}
            cells = [Text(str(values[column]), style=style) for column, _ in COLUMNS]
            if key in table.rows:
                for (column, _), cell in zip(COLUMNS, cells):
                    table.update_cell(key, column, cell)
            else:
                table.add_row(*cells, key=key)
        for key in [k.value for k in table.rows if k.value not in seen]:
            table.remove_row(key)
