"""A kernel state read as plain-text tables, in words (`state_words.explain`): names for ids,
waits resolved, events as sentences; with a `RateMeter` (`--watch`), rates since the last."""

from __future__ import annotations

from .state import KernelState
from .state_rates import RateMeter, Rates
from .state_words import explain


def table(title: str, rows: list[dict], empty: str = "none") -> str:
    if not rows:
        return f"{title}: {empty}"
    columns = list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [f"{title}:", "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def render(snap: KernelState, events: int = 16, known: dict | None = None, meter: RateMeter | None = None) -> str:
    """`known`: see `state_words.explain`. With `meter`, which saw the snapshots before this one,
    endpoints show calls and bytes per second and servers their CPU share ("-" until known)."""
    said = explain(snap, events, known)
    rates = meter.add(said) if meter is not None else None
    # What it waits for comes last: the only cell with spaces in it.
    threads = [{"id": t.id, "name": t.name, "server": t.server or "-", "state": t.state, "priority": t.priority,
                "cpu_ms": _ms(t.cpu_ticks, said), "switches": t.switches, "waits": t.waits} for t in said.threads]
    endpoints = [{"id": e.id, "name": e.name, "owner": e.owner, "receivers": " ".join(e.receivers),
                  "callers": " ".join(e.callers), "calls": e.calls,
                  **({"calls/s": _rate(rates, rates.calls.get(e.id))} if rates else {}), "replies": e.replies,
                  "bytes": e.bytes, **({"bytes/s": _rate(rates, rates.bytes.get(e.id))} if rates else {}),
                  "errors": e.errors, "peer_died": e.peer_died} for e in said.endpoints]
    servers = [{"id": s.id, "name": s.name, "status": s.status, "restarts": s.restarts, "last_exit": s.last_exit,
                "memory": f"{s.memory >> 10} KiB / {s.memory_limit >> 10} KiB", "handles": f"{s.handles}/{s.handle_limit}",
                "cpu_ms": _ms(s.cpu_ticks, said), **({"cpu %": _rate(rates, rates.server_cpu.get(s.name))} if rates else {})}
               for s in said.servers]
    irqs = [{"line": i.line, "notification": i.notification, "bound_by": i.bound_by, "waiter": i.waiter, "count": i.count,
             "acknowledged": i.acknowledged,
             "last_ack": "" if i.acknowledged_ago_ms is None else f"{i.acknowledged_ago_ms:.0f} ms ago"} for i in said.irqs]
    recent = [{"age_us": e.age_us, "event": e.text} for e in said.events]
    parts = [
        f"sequence {snap.sequence}  cpus {snap.cpu_count}  read+decode {snap.read_ms:.2f} ms",
        table("cpus", snap.cpus),
        table(f"servers ({len(servers)}, dropped {snap.servers_dropped})", servers),
        table(f"threads ({len(threads)}, dropped {snap.threads_dropped})", threads),
        table(f"endpoints ({len(endpoints)}, dropped {snap.endpoints_dropped})", endpoints),
        table("irqs", irqs),
        table(f"events (last {len(recent)} of {snap.events_written}, overwritten {snap.events_dropped})", recent),
    ]
    return "\n\n".join(parts)


def _rate(rates: Rates, value: float | None) -> str:
    return "-" if not rates.seconds or value is None else f"{value:.0f}"


def _ms(ticks: int, said) -> int:
    return ticks * 1000 // (said.ticks_per_second or 1000)
