"""A kernel state read as plain-text tables. Columns are the records' own fields, so a field the kernel
adds shows up here without a change."""

from __future__ import annotations

from .state import KernelState


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


def _events(snap: KernelState, limit: int) -> list[dict]:
    events = snap.events[-limit:]
    if not events:
        return []
    newest = events[-1].tsc
    rows = []
    for event in events:
        row = dict(event)
        if snap.tsc_per_us:  # time before the newest event, when the kernel says how fast its TSC is
            row = {"age_us": (newest - event.tsc) // snap.tsc_per_us, **row}
        rows.append(row)
    return rows


def render(snap: KernelState, events: int = 16) -> str:
    irqs = [{"irq": n, "count": c} for n, c in enumerate(snap.irq_counts) if c]
    parts = [
        f"sequence {snap.sequence}  cpus {snap.cpu_count}  read+decode {snap.read_ms:.2f} ms",
        table("cpus", snap.cpus),
        table(f"threads ({len(snap.threads)}, dropped {snap.threads_dropped})", snap.threads),
        table(f"endpoints ({len(snap.endpoints)}, dropped {snap.endpoints_dropped})", snap.endpoints),
        table("irqs", irqs),
        table(f"events (last {min(events, len(snap.events))} of {snap.events_written}, "
              f"overwritten {snap.events_dropped})", _events(snap, events)),
    ]
    return "\n\n".join(parts)
