"""Rates from successive snapshots (workbench/state_rates.py), as `kwast-bench state --watch`,
its `--json` and the TUI derive them: on three recorded blocks of configs/desktop.yaml (no
QEMU), held up, then after typing "hello", then after F12 crashed ps2 and init restarted it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.state import from_raw, record_of
from workbench.state_rates import RateMeter
from workbench.state_view import render
from workbench.state_words import explain, snapshot_json

# Recorded from a live run with tests/live.py's held_machine: {"ring_capacity", "snapshots":
# [the raw block at each moment]}. CPU 0's ticks (1000 a second): 140, 300, 350.
RECORDED = Path(__file__).parent / "data/desktop-snapshots.json"


def snapshots():
    document = json.loads(RECORDED.read_text())
    return [from_raw(record_of(raw), document["ring_capacity"]) for raw in document["snapshots"]]


def test_rates_between_recorded_snapshots():
    held, typed, restarted = snapshots()
    meter = RateMeter()
    first = meter.add(explain(held))
    # Nothing before the first: no time, every rate 0.
    assert first.seconds == 0 and set(first.calls.values()) == {0} and set(first.server_cpu.values()) == {0}
    rates = meter.add(explain(typed))
    # 0.16 s of kernel time: five calls of one byte each, and their empty replies.
    assert rates.seconds == pytest.approx(0.16)
    assert rates.calls == {1: pytest.approx(31.25)} and rates.bytes == {1: pytest.approx(31.25)}
    # CPU ticks init 108 -> 108, console 9 -> 11, ps2 9 -> 12: percent of one CPU.
    assert rates.server_cpu == {"init": 0, "console": pytest.approx(1.25), "ps2": pytest.approx(1.875)}
    assert sum(rates.thread_cpu.values()) == pytest.approx(100)  # idle's share included
    rates = meter.add(explain(restarted))
    # 0.05 s: no call; init 108 -> 112 ticks restarting ps2, whose new row starts at 1 tick: a
    # total that fell is no negative rate.
    assert rates.seconds == pytest.approx(0.05) and rates.calls == {1: 0}
    assert rates.server_cpu == {"init": pytest.approx(8), "console": 0, "ps2": 0}


def test_watch_shows_rates_from_the_second_snapshot_on():
    held, typed, _ = snapshots()
    meter = RateMeter()
    assert "calls/s" not in render(held)  # one snapshot: no rates to show
    lines = render(held, meter=meter).splitlines()
    endpoints = lines.index("endpoints (1, dropped 0):")
    assert lines[endpoints + 1].split() == ["id", "name", "owner", "receivers", "callers", "calls", "calls/s", "replies",
                                            "bytes", "bytes/s", "errors", "peer_died"]
    assert lines[endpoints + 2].split() == ["1", "console", "init", "console", "0", "-", "0", "0", "-", "0", "0"]
    lines = render(typed, meter=meter).splitlines()
    assert lines[endpoints + 2].split() == ["1", "console", "init", "console", "5", "31", "5", "5", "31", "0", "0"]
    servers = {line.split()[1]: line.split()[-1] for line in lines[lines.index("servers (3, dropped 0):") + 2:][:3]}
    assert servers == {"init": "0", "console": "1", "ps2": "2"}  # cpu %


def test_watch_json_carries_the_rates():
    held, typed, _ = snapshots()
    assert snapshot_json(typed)["endpoints"][0]["calls_per_s"] is None  # without --watch
    meter = RateMeter()
    assert snapshot_json(held, meter=meter)["servers"][0]["cpu_percent"] is None  # the first of --watch
    document = json.loads(json.dumps(snapshot_json(typed, meter=meter)))
    (console,) = document["endpoints"]
    assert (console["calls_per_s"], console["bytes_per_s"]) == (pytest.approx(31.2), pytest.approx(31.2))
    assert {s["name"]: s["cpu_percent"] for s in document["servers"]} == {"init": 0, "console": pytest.approx(1.2),
                                                                          "ps2": pytest.approx(1.9)}
