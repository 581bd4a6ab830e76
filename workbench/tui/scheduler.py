"""The scheduler view: every kernel thread (state, priority, CPU, run ticks, switches) and each
CPU's current thread and idle share, from the live state feed."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ..state import KernelState

# (column key, heading, how to show a thread's field)
COLUMNS = [
    ("id", "id", str),
    ("name", "name", str),
    ("state", "state", str),
    ("priority", "prio", str),
    ("cpu", "cpu", str),
    ("run_ticks", "run ticks", str),
    ("switches", "switches", str),
    ("wait_object", "waits on", lambda value: f"{value:#x}" if value else ""),
]


class SchedulerView(Vertical):
    HELP = """\
## Scheduler
Kernel threads and CPUs, read from guest memory four times a second without pausing the guest.
The running thread is bold; rows change in place, so the cursor stays where you put it.
"""

    def compose(self) -> ComposeResult:
        yield Static("no machine: boot one (F2)", id="cpus")
        table = DataTable(id="threads", cursor_type="row", zebra_stripes=True)
        for key, heading, _ in COLUMNS:
            table.add_column(heading, key=key)
        yield table

    def waiting(self, reason: str) -> None:
        self.query_one("#cpus", Static).update(reason)

    def show(self, kernel: KernelState) -> None:
        names = {thread.id: thread.name for thread in kernel.threads}
        self.query_one("#cpus", Static).update("   ".join(
            f"cpu{cpu.index}: running {names.get(cpu.current_thread, cpu.current_thread)}, "
            f"idle {100 * cpu.idle_ticks // max(cpu.ticks, 1)}% of {cpu.ticks} ticks"
            for cpu in kernel.cpus))
        table = self.query_one("#threads", DataTable)
        seen = set()
        for thread in kernel.threads:
            key = str(thread.id)
            seen.add(key)
            style = "bold" if str(thread.state) == "Running" else ""
            cells = [Text(show(thread[column]), style=style) for column, _, show in COLUMNS]
            if key in table.rows:
                for (column, _, _), cell in zip(COLUMNS, cells):
                    table.update_cell(key, column, cell)
            else:
                table.add_row(*cells, key=key)
        for key in [k.value for k in table.rows if k.value not in seen]:
            table.remove_row(key)
