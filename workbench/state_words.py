"""A kernel state read (`state.KernelState`) explained in words and names: what each thread
waits for (`receive on endpoint console`), which server it belongs to, each endpoint's callers
and totals, each server's state, memory and restarts, each IRQ's binding, and events as
sentences (`ps2 → console call 3 bytes`, `init signals notification irq1`).

Names come from the snapshot itself: threads, servers and endpoints by id, IRQ lines by the
notification they signal, and processes that have since been restarted by the snapshot's
Restart events. Kinds are the kernel's enumerator names (from the DWARF), never numbers.
`explain` is what `kwast-bench state`, `--json`, the TUI and scenario predicates show.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from .state import KernelState

if TYPE_CHECKING:
    from .state_rates import RateMeter


@dataclass
class Thread:
    id: int
    name: str
    server: str            # its process's name; "" for a kernel thread
    state: str             # Ready, Running, Blocked, Sleeping, Dead
    priority: int          # higher runs first
    waits: str             # what for, in words; "" when not waiting
    wait_kind: str         # Receive, Call, Reply, Notification, Sleep, Join, Servers, None
    wait_object: str       # the name of what it waits on (endpoint, notification, thread)
    cpu_ticks: int
    switches: int
    cpu: int               # the CPU it runs on, or last ran on


@dataclass
class Endpoint:
    id: int
    name: str              # given by its creator, else its id
    owner: str             # the process that created it (init, for the manifest's)
    receivers: list[str]   # threads waiting in receive on it now
    callers: list[str]     # threads whose call on it is queued or being answered
    calls: int             # totals since it was made: they only grow
    replies: int
    bytes: int
    errors: int
    peer_died: int


@dataclass
class Server:
    id: int                # its latest process
    name: str
    state: str             # running, exited, killed
    status: str            # "running", "exited with code 0", "killed: <reason>"
    exit_code: int
    reason: str
    last_exit: str         # how it, or its predecessor before a restart, last ended; "" if never
    restarts: int
    memory: int            # linear memory bytes
    memory_limit: int
    handles: int
    handle_limit: int
    cpu_ticks: int


@dataclass
class Irq:
    line: int
    notification: int      # 0: unbound
    bound_by: str          # the server that bound it (init, for the manifest's)
    waiter: str            # the server waiting on its notification now
    count: int
    acknowledged: int
    acknowledged_ago_ms: float | None  # before the newest event; None if never acknowledged


@dataclass
class Event:
    kind: str
    text: str
    server: str            # the server it concerns (whose thread did it, or who was killed)
    age_us: int | None
    thread: int
    a: int
    b: int


@dataclass
class Explained:
    ticks_per_second: int
    ticks: int
    threads: list[Thread]
    endpoints: list[Endpoint]
    servers: list[Server]
    irqs: list[Irq]
    events: list[Event] = field(default_factory=list)

    def as_json(self) -> dict:
        return asdict(self)


class _Names:
    """Ids to names within one snapshot, and threads gone since that `known` remembers."""

    def __init__(self, kernel: KernelState, known: dict[int, tuple[str, str]] | None = None):
        self.threads = {t.id: t for t in kernel.threads}
        self.known = known if known is not None else {}
        self.endpoints = {e.id: e for e in kernel.endpoints}
        self.processes = {s.id: s.name for s in kernel.servers}
        # A restarted process's old id names the same server as its new one.
        for event in reversed(kernel.events):
            if event.kind == "Restart" and event.a in self.processes:
                self.processes.setdefault(event.b, self.processes[event.a])
        self.irq_of = {irq.notification: irq.line for irq in kernel.irqs if irq.notification}

    def thread(self, id: int) -> str:
        thread = self.threads.get(id)
        return thread.name if thread else self.known.get(id, (f"thread {id}",))[0]

    def server_of(self, id: int) -> str:
        """The server a thread belongs to, else the thread's own name (a kernel thread)."""
        thread = self.threads.get(id)
        if thread is None:
            return self.known[id][1] if id in self.known else f"thread {id}" if id else "kernel"
        return self.processes.get(thread.process, thread.name) if thread.process else thread.name

    def process(self, id: int) -> str:
        return self.processes.get(id, f"process {id}")

    def endpoint(self, id: int) -> str:
        endpoint = self.endpoints.get(id)
        return (endpoint.name or str(id)) if endpoint else str(id)

    def waiter(self, notification: int) -> str:
        """The server (or kernel thread) waiting on `notification` now, if one is."""
        waiting = [t.id for t in self.threads.values()
                   if t.state == "Blocked" and t.wait.kind == "Notification" and t.wait.object == notification]
        return self.server_of(waiting[0]) if notification and waiting else ""

    def notification(self, id: int) -> str:
        return f"irq{self.irq_of[id]}" if id in self.irq_of else str(id)


def _wait(thread, names: _Names, kernel: KernelState) -> tuple[str, str]:
    """(words, object's name) for a thread's wait."""
    wait = thread.wait
    kind, object_ = wait.kind, wait.object
    if thread.state not in ("Blocked", "Sleeping"):
        return "", ""
    if kind == "Receive":
        name = names.endpoint(object_)
        return f"receive on endpoint {name}", name
    if kind == "Call":
        name = names.endpoint(object_)
        return f"call to endpoint {name} (badge {wait.detail})", name
    if kind == "Reply":
        name = names.endpoint(object_)
        return f"reply from {name}", name
    if kind == "Notification":
        name = names.notification(object_)
        return f"wait on notification {name}", name
    if kind == "Sleep":
        now = kernel.cpus[0].ticks if kernel.cpus else 0
        return f"sleep until +{_ms(wait.detail - now, kernel):.0f} ms", ""
    if kind == "Join":
        name = names.thread(object_)
        return f"join {name}", name
    if kind == "Servers":
        return "wait for every server to end", ""
    return str(kind), ""


def _ms(ticks: int, kernel: KernelState) -> float:
    rate = kernel.raw.ticks_per_second or 1000
    return ticks * 1000 / rate


def _server(row) -> Server:
    state = str(row.state).lower()
    status = {"exited": f"exited with code {row.exit_code}", "killed": f"killed: {row.reason}"}.get(state, state)
    # The kernel empties the reason at an exit: a reason means the last end was a kill.
    last_exit = f"killed: {row.reason}" if row.reason else \
        f"exited with code {row.exit_code}" if state == "exited" or row.restarts else ""
    return Server(id=row.id, name=row.name, state=state, status=status, exit_code=row.exit_code,
                  reason=row.reason, last_exit=last_exit, restarts=row.restarts, memory=row.memory, memory_limit=row.memory_limit,
                  handles=row.handles, handle_limit=row.handle_limit, cpu_ticks=row.cpu_ticks)


def _event(event, names: _Names, kernel: KernelState, servers: dict[int, Server], newest: int) -> Event:
    kind, who = str(event.kind), names.server_of(event.thread)
    text, concerns = f"{who}: {kind} {event.a} {event.b}", who
    if kind == "IpcCall":
        text = f"{who} → {names.endpoint(event.a)} call {event.b} bytes"
    elif kind == "IpcReply":
        text = f"{who} replies on {names.endpoint(event.a)}: {event.b} bytes"
    elif kind == "Trap":
        concerns = names.process(event.a)
        server = next((s for s in servers.values() if s.name == concerns), None)
        reason = server.reason if server and server.reason else "(reason not kept)"
        text = f"{concerns} killed: {reason}"
    elif kind == "Kill":
        concerns = names.process(event.a)
        text = f"the workbench asks to kill {concerns}"
    elif kind == "Restart":
        concerns = names.process(event.a)
        text = f"{who} restarts {concerns}"
    elif kind == "Irq":
        line = kernel.irqs[event.a] if event.a < len(kernel.irqs) else None
        target = names.waiter(line.notification) if line is not None else ""
        target = target or (names.process(line.owner) if line is not None and line.owner else "no one")
        text, concerns = f"irq{event.a} signals {target}", target
    elif kind == "Signal":
        # Thread 0: an IRQ's signal; it concerns the driver waiting for it, as `Irq` does.
        notification = names.notification(event.a)
        if event.thread:
            text = f"{who} signals notification {notification}"
        else:
            text, concerns = f"an IRQ signals notification {notification}", names.waiter(event.a) or who
    elif kind == "Switch":
        text = f"switch {names.thread(event.thread)} → {names.thread(event.a)}"
    elif kind == "ThreadStart":
        text = f"{names.thread(event.thread)} starts"
    elif kind == "ThreadExit":
        text = f"{names.thread(event.thread)} exits"
    elif kind == "Wake":
        text = f"{names.thread(event.thread)} wakes"
    age = (newest - event.tsc) // kernel.tsc_per_us if kernel.tsc_per_us else None
    return Event(kind=kind, text=text, server=concerns, age_us=age, thread=event.thread, a=event.a, b=event.b)


def explain(kernel: KernelState, events: int | None = None, known: dict | None = None) -> Explained:
    """The snapshot in words; the last `events` events (all if None). `known`, kept by the
    caller across snapshots, remembers threads' names and servers for events of threads that
    have exited since (a crashed server's)."""
    names = _Names(kernel, known)
    for t in kernel.threads:
        names.known[t.id] = (t.name, names.server_of(t.id))
    threads = []
    for t in kernel.threads:
        waits, object_ = _wait(t, names, kernel)
        threads.append(Thread(id=t.id, name=t.name, server=names.process(t.process) if t.process else "",
                              state=str(t.state), priority=t.priority, waits=waits,
                              wait_kind=str(t.wait.kind) if waits else "None", wait_object=object_,
                              cpu_ticks=t.run_ticks, switches=t.switches, cpu=t.cpu))
    endpoints = []
    for e in kernel.endpoints:
        waiting = [t for t in kernel.threads if t.wait.object == e.id and t.state == "Blocked"]
        endpoints.append(Endpoint(
            id=e.id, name=e.name or str(e.id), owner=names.process(e.owner),
            receivers=[t.name for t in waiting if t.wait.kind == "Receive"],
            callers=[t.name for t in waiting if t.wait.kind in ("Call", "Reply")],
            calls=e.calls, replies=e.replies, bytes=e.bytes, errors=e.errors, peer_died=e.peer_died))
    servers = [_server(row) for row in kernel.servers]
    by_id = {s.id: s for s in servers}
    newest = kernel.events[-1].tsc if kernel.events else 0
    irqs = [Irq(line=i.line, notification=i.notification, bound_by=names.process(i.owner) if i.owner else "",
                waiter=names.waiter(i.notification),
                count=i.count, acknowledged=i.acknowledged,
                acknowledged_ago_ms=(newest - i.acknowledged_tsc) / kernel.tsc_per_us / 1000
                if i.acknowledged and kernel.tsc_per_us else None)
            for i in kernel.irqs if i.count or i.notification]
    recent = kernel.events if events is None else kernel.events[-events:] if events else []
    return Explained(
        ticks_per_second=kernel.raw.ticks_per_second, ticks=kernel.cpus[0].ticks if kernel.cpus else 0,
        threads=threads, endpoints=endpoints, servers=servers, irqs=irqs,
        events=[_event(e, names, kernel, by_id, newest) for e in recent])


def snapshot_json(kernel: KernelState, events: int | None = None, known: dict | None = None,
                  meter: RateMeter | None = None) -> dict:
    """One snapshot for `kwast-bench state --json` (fields: docs/state-json.md): the explained
    tables plus the read's own figures. Rates (`calls_per_s`, `bytes_per_s`, `cpu_percent`)
    come from `meter`, which saw the snapshots before; null without one, or until known."""
    said = explain(kernel, events, known)
    rates = meter.add(said) if meter is not None else None
    document = {"sequence": kernel.sequence, "layout_version": kernel.raw.layout_version,
                "cpus": kernel.cpus, "threads_dropped": kernel.threads_dropped,
                "endpoints_dropped": kernel.endpoints_dropped, "servers_dropped": kernel.servers_dropped,
                "events_written": kernel.events_written, "events_dropped": kernel.events_dropped, **said.as_json()}

    def rate(table: str, key) -> float | None:
        value = getattr(rates, table).get(key) if rates is not None and rates.seconds else None
        return None if value is None else round(value, 1)

    for endpoint in document["endpoints"]:
        endpoint["calls_per_s"], endpoint["bytes_per_s"] = rate("calls", endpoint["id"]), rate("bytes", endpoint["id"])
    for server in document["servers"]:
        server["cpu_percent"] = rate("server_cpu", server["name"])
    return document
