"""The servers view: one row per server (by name, kept after it ends): state, CPU share, linear
memory against its limit, handles, restarts and how it last ended."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from ..state_rates import RateMeter
from ..state_words import Explained

COLUMNS = [("name", "server"), ("state", "state"), ("cpu", "cpu %"), ("memory", "memory"),
           ("handles", "handles"), ("restarts", "restarts"), ("last_exit", "last exit")]


class ServersView(Vertical):
    HELP = """\
## Servers
One row per server, kept when it ends: running, exited with its code or killed (red); its CPU
share since the last refresh, linear memory against its limit, handles in use, how often it
was restarted and how it last ended.
"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._rates = RateMeter()

    def compose(self) -> ComposeResult:
        table = DataTable(id="servers", cursor_type="row", zebra_stripes=True)
        for key, heading in COLUMNS:
            table.add_column(heading, key=key)
        yield table

    def show(self, said: Explained) -> None:
        cpu = self._rates.add(said).server_cpu
        table = self.query_one("#servers", DataTable)
        for server in said.servers:
            style = {"killed": "red", "exited": "dim"}.get(server.state, "")
            values = {"name": server.name, "state": server.status if server.state != "killed" else "killed",
                      "cpu": f"{cpu.get(server.name, 0):.0f}",
                      "memory": f"{server.memory >> 10} / {server.memory_limit >> 10} KiB",
                      "handles": f"{server.handles} / {server.handle_limit}", "restarts": server.restarts,
                      "last_exit": server.last_exit}
            cells = [Text(str(values[column]), style=style) for column, _ in COLUMNS]
            if server.name in table.rows:
                for (column, _), cell in zip(COLUMNS, cells):
                    table.update_cell(server.name, column, cell)
            else:
                table.add_row(*cells, key=server.name)
