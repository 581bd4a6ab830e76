"""The scheduler view: each CPU (its running thread, its load now and a sparkline of it) and
every kernel thread (server, state, what it waits for in words, the CPU it is on, CPU time and a
sparkline of its CPU share), from the live state feed (`state_words.explain`)."""

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
           ("on", "on cpu"), ("run_ticks", "run ticks"), ("cpu", "cpu %"), ("trend", "cpu"), ("switches", "switches")]
CPU_COLUMNS = [("cpu", "cpu"), ("running", "running"), ("load", "load %"), ("trend", "load"), ("ticks", "ticks")]


class SchedulerView(Vertical):
    HELP = """\
## Scheduler
CPUs and kernel threads, read from guest memory four times a second without pausing the guest.
Each CPU: the thread it runs and its load (the share of its ticks not idle) now and over the
last few seconds. Each thread: its server, what it waits for (`receive on endpoint console`,
`reply from console`, `wait on notification irq1`), the CPU it runs or last ran on, its CPU
share now and over the last few seconds. Running threads are bold; rows change in place, so the
cursor stays where you put it.
"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._meter = RateMeter()
        self._cpu = History()
        self._load = History()
        self._ticks: dict[int, tuple[int, int]] = {}  # per CPU: (ticks, idle ticks) last seen

    def compose(self) -> ComposeResult:
        yield Static("no machine: boot one (F2)", id="cpus")
        cpus = DataTable(id="cpu-table", cursor_type="none", show_cursor=False)
        for key, heading in CPU_COLUMNS:
            cpus.add_column(heading, key=key)
        yield cpus
        table = DataTable(id="threads", cursor_type="row", zebra_stripes=True)
        for key, heading in COLUMNS:
            table.add_column(heading, key=key)
        yield table

    def waiting(self, reason: str) -> None:
        self.query_one("#cpus", Static).update(reason)

    def _loads(self, kernel: KernelState) -> dict[int, float]:
        """Each CPU's busy share (%) of its ticks since the last snapshot."""
        loads = {}
        for cpu in kernel.cpus:
            ticks, idle = self._ticks.get(cpu.index, (cpu.ticks, cpu.idle_ticks))
            elapsed = cpu.ticks - ticks
            loads[cpu.index] = 100 * (1 - (cpu.idle_ticks - idle) / elapsed) if elapsed > 0 else 0.0
            self._ticks[cpu.index] = (cpu.ticks, cpu.idle_ticks)
        return loads

    def show(self, kernel: KernelState, said: Explained) -> None:
        names = {thread.id: thread.name for thread in said.threads}
        self.query_one("#cpus", Static).update(f"{len(kernel.cpus)} CPUs online")
        loads = self._loads(kernel)
        self._load.add(loads)
        cpus = self.query_one("#cpu-table", DataTable)
        for cpu in kernel.cpus:
            values = {"cpu": cpu.index, "running": names.get(cpu.current_thread, cpu.current_thread),
                      "load": f"{loads[cpu.index]:.0f}", "trend": self._load.sparkline(cpu.index), "ticks": cpu.ticks}
            key = str(cpu.index)
            if key in cpus.rows:
                for column, _ in CPU_COLUMNS:
                    cpus.update_cell(key, column, str(values[column]))
            else:
                cpus.add_row(*(str(values[column]) for column, _ in CPU_COLUMNS), key=key)
        shares = self._meter.add(said).thread_cpu
        self._cpu.add(shares)
        table = self.query_one("#threads", DataTable)
        seen = set()
        for thread in said.threads:
            key = str(thread.id)
            seen.add(key)
            style = "bold" if thread.state == "Running" else ""
            values = {"id": thread.id, "name": thread.name, "server": thread.server, "state": thread.state,
                      "waits": thread.waits, "on": thread.cpu, "run_ticks": thread.cpu_ticks, "cpu": f"{shares.get(thread.id, 0):.0f}",
                      "trend": self._cpu.sparkline(thread.id), "switches": thread.switches}
            cells = [Text(str(values[column]), style=style) for column, _ in COLUMNS]
            if key in table.rows:
                for (column, _), cell in zip(COLUMNS, cells):
                    table.update_cell(key, column, cell)
            else:
                table.add_row(*cells, key=key)
        for key in [k.value for k in table.rows if k.value not in seen]:
            table.remove_row(key)
