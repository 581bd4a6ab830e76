"""Rates from successive state snapshots (`state_words.Explained`): calls and bytes per second
per endpoint, and the CPU share of each server and thread, from the kernel's totals, which only
grow. Timed by the kernel's own clock (CPU 0's timer ticks), so a late read does not skew them.
`kwast-bench state --watch` (text and `--json`) and the TUI's panes all derive them here."""

from __future__ import annotations

from dataclasses import dataclass, field

from .state_words import Explained


@dataclass
class Rates:
    seconds: float  # kernel time since the snapshot before; 0: none before, or no time passed
    calls: dict[int, float] = field(default_factory=dict)        # endpoint id -> calls/s
    bytes: dict[int, float] = field(default_factory=dict)        # endpoint id -> request and reply bytes/s
    server_cpu: dict[str, float] = field(default_factory=dict)   # server name -> % of one CPU
    thread_cpu: dict[int, float] = field(default_factory=dict)   # thread id -> % of one CPU


class RateMeter:
    """`add(said)` gives the rates between `said` and the snapshot added before it. With no
    time between them (the first, or a paused guest) every rate is 0 and `seconds` 0. A total
    that fell (a server restarted under its name starts its CPU time again) counts as 0; one
    not seen before counts from this snapshot on."""

    def __init__(self) -> None:
        self._last: tuple[int, dict[tuple, int]] | None = None

    def add(self, said: Explained) -> Rates:
        totals = {**{("calls", e.id): e.calls for e in said.endpoints}, **{("bytes", e.id): e.bytes for e in said.endpoints},
                  **{("server", s.name): s.cpu_ticks for s in said.servers},
                  **{("thread", t.id): t.cpu_ticks for t in said.threads}}
        last, self._last = self._last, (said.ticks, totals)
        per_second = said.ticks_per_second or 1000
        seconds = (said.ticks - last[0]) / per_second if last is not None and said.ticks > last[0] else 0.0
        rates = {key: max(0, total - last[1].get(key, total)) / seconds if seconds else 0.0
                 for key, total in totals.items()}
        share = 100 / per_second  # ticks per second of ticks per second: percent
        return Rates(seconds=seconds,
                     calls={id_: rates["calls", id_] for kind, id_ in rates if kind == "calls"},
                     bytes={id_: rates["bytes", id_] for kind, id_ in rates if kind == "bytes"},
                     server_cpu={name: rates["server", name] * share for kind, name in rates if kind == "server"},
                     thread_cpu={id_: rates["thread", id_] * share for kind, id_ in rates if kind == "thread"})
