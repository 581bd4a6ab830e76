"""Recent values per key (a thread, an endpoint, a server) across state snapshots, and the
sparkline text a table cell shows them as. The rates themselves come from `state_rates`."""

from __future__ import annotations

import collections

BARS = "▁▂▃▄▅▆▇█"


class History:
    """The last `length` values of each key; keys not seen in a snapshot are forgotten."""

    def __init__(self, length: int = 24):
        self.length = length
        self._values: dict[object, collections.deque[float]] = {}

    def add(self, values: dict[object, float]) -> None:
        self._values = {key: self._values.get(key, collections.deque(maxlen=self.length)) for key in values}
        for key, value in values.items():
            self._values[key].append(value)

    def sparkline(self, key: object) -> str:
        values = self._values.get(key, ())
        top = max(values, default=0)
        if top <= 0:
            return BARS[0] * len(values)
        return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in values)

