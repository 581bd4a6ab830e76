"""`kwast-bench trace`: the ring drainer and the trace writer on recorded events (no QEMU), and
live runs on the ping/pong benchmark and on the desktop while keys are typed."""

from __future__ import annotations

import json
import re
import statistics
import struct
import subprocess
import sys
from pathlib import Path

from conftest import SETTINGS
from workbench import trace
from workbench.dwarf import Record
from workbench.scenario import model
from workbench.state import StateReader

FIXTURES = Path(__file__).parent / "fixtures"


def _recorded(name: str) -> tuple[list[tuple[int, Record]], trace.Names, int]:
    """A recording made with `cli.trace.record`: events as drained, and the rows' names."""
    data = json.loads((FIXTURES / name).read_text())
    names = trace.Names({int(k): v for k, v in data["threads"].items()},
                        {int(k): v for k, v in data["thread_process"].items()},
                        {int(k): v for k, v in data["endpoint_owner"].items()})
    return [(number, Record(event)) for number, event in data["events"]], names, data["tsc_per_us"]


def test_keys_on_the_desktop_flow_from_the_irq_to_ps2_to_the_console():
    """tests/fixtures/trace-desktop-keys.json: configs/desktop.yaml with "ab" typed."""
    events, names, tsc_per_us = _recorded("trace-desktop-keys.json")
    out = trace.chrome_trace(events, names, tsc_per_us)["traceEvents"]
    tracks = {e["tid"]: e["args"]["name"] for e in out if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 2}
    ps2, console = (next(t for t, n in tracks.items() if n.startswith(name)) for name in ("ps2", "console"))
    flows: dict[tuple[str, int], list[dict]] = {}
    for e in out:
        if e["ph"] in "stf":
            flows.setdefault((e["cat"], e["id"]), []).append(e)
    irqs = [steps for (cat, _), steps in flows.items() if cat == "irq"]
    calls = [steps for (cat, _), steps in flows.items() if cat == "ipc"]
    kinds = [str(e.kind) for _, e in events]
    assert len(irqs) == kinds.count("Irq") and len(calls) == kinds.count("IpcCall") == 2
    # Each IRQ, on the CPU's track, ends where ps2 next runs; each of ps2's calls is received
    # and answered by the console.
    assert all([s["ph"] for s in steps] == ["s", "f"] and steps[0]["pid"] == 1 and steps[1]["tid"] == ps2
               and steps[1]["ts"] >= steps[0]["ts"] for steps in irqs)
    assert all([(s["ph"], s["tid"]) for s in steps] == [("s", ps2), ("t", console), ("f", console)]
               and steps[0]["ts"] <= steps[1]["ts"] <= steps[2]["ts"] for steps in calls)
    # A run slice per switch, on the CPU's track and the thread's.
    switches = kinds.count("Switch")
    assert sum(1 for e in out if e["ph"] == "X" and e["pid"] == 1) == switches
    assert {e["name"] for e in out if e["ph"] == "i" and e["name"].startswith("call")} == {"call endpoint 1 (console)"}
    receives = [e for e in out if e["ph"] == "i" and e["name"] == "receive endpoint 1 (console)"]
    assert [(e["tid"], e["ts"]) for e in receives] == [(s[1]["tid"], s[1]["ts"]) for s in calls]


def test_a_signal_flows_to_the_next_run_of_the_thread_it_woke():
    """tests/fixtures/trace-pingpong-signals.json: 120 events of configs/pingpong.yaml's
    signal+wait figure, ping and pong each signalling the notification the other waits on."""
    events, names, tsc_per_us = _recorded("trace-pingpong-signals.json")
    out = trace.chrome_trace(events, names, tsc_per_us)["traceEvents"]
    signals = [(i, e) for i, (_, e) in enumerate(events) if str(e.kind) == "Signal"]
    instants = [e for e in out if e["ph"] == "i" and e["name"].startswith("signal")]
    assert len(instants) == len(signals) > 30
    assert [(e["tid"], e["ts"], e["args"]["bits"]) for e in instants] == [(s.thread, s.tsc / tsc_per_us, s.b) for _, s in signals]
    assert {e["name"] for e in instants} == {"signal notification 3", "signal notification 4"}
    # What each arrow must join: the signal, and where the thread woken right after it next
    # starts to run (the last signal's waiter may not run again before the recording ends).
    expected = []
    for i, signal in signals:
        woken = events[i + 1][1]
        assert str(woken.kind) == "Wake" and woken.thread != signal.thread
        run = next((e for _, e in events[i + 2:] if str(e.kind) == "Switch" and e.a == woken.thread), None)
        if run is not None:
            expected.append((signal.thread, signal.tsc / tsc_per_us, woken.thread, run.tsc / tsc_per_us))
    flows: dict[int, list[dict]] = {}
    for e in out:
        if e["ph"] in "sf" and e["cat"] == "signal":
            flows.setdefault(e["id"], []).append(e)
    ended = [steps for steps in flows.values() if len(steps) == 2]
    assert all([s["ph"] for s in steps] == ["s", "f"] for steps in ended)
    assert [(s["tid"], s["ts"], f["tid"], f["ts"]) for s, f in ended] == expected and len(expected) >= len(signals) - 1


def test_a_wake_right_after_a_signal_gets_its_arrow_only_if_it_names_the_signals_notification():
    """A signal's wakes name its notification (`Wake`'s `a`); a deadline's or the kernel's own
    wake that comes next names none (0), and is not drawn as the signal's."""
    def event(kind: str, thread: int, a: int = 0, b: int = 0, tsc: int = 1000) -> Record:
        return Record({"tsc": tsc, "kind": kind, "thread": thread, "a": a, "b": b})
    events = list(enumerate([event("Switch", 2, 5, tsc=1000), event("Signal", 5, 3, 1, tsc=2000),
                             event("Wake", 4, 3, tsc=2100), event("Wake", 1, 0, tsc=2200),
                             event("Switch", 5, 4, tsc=3000), event("Switch", 4, 1, tsc=4000)], start=1))
    names = trace.Names({1: "kmain", 2: "idle", 4: "pong", 5: "ping"}, {1: 0, 2: 0, 4: 2, 5: 3}, {})
    out = trace.chrome_trace(events, names, 1)["traceEvents"]
    arrows = [(e["ph"], e["tid"]) for e in out if e.get("cat") == "signal" and e["ph"] in "sf"]
    assert arrows == [("s", 5), ("f", 4)]


def test_an_irqs_signal_is_on_the_cpus_track_and_its_arrow_the_irqs():
    """A state read's ring after "hello" was typed on the desktop (test_state_rates's recorded
    snapshots): each IRQ, then its signal of ps2's notification, then ps2's wake."""
    from test_state_rates import snapshots

    kernel = snapshots()[1]
    events, names = trace.from_state(kernel)
    out = trace.chrome_trace(events, names, kernel.tsc_per_us)["traceEvents"]
    irqs = sum(1 for _, e in events if str(e.kind) == "Irq")
    signals = [e for e in out if e["ph"] == "i" and e["name"].startswith("signal")]
    assert irqs and len(signals) == irqs
    assert {(e["pid"], e["tid"], e["name"]) for e in signals} == {(1, 0, "signal notification 2 (irq1)")}
    assert not [e for e in out if e.get("cat") == "signal"]
    ps2 = next(t for t in names.threads if names.threads[t] == "ps2")
    assert {e["tid"] for e in out if e["ph"] == "f" and e["cat"] == "irq"} == {ps2}


def test_the_summary_counts_calls_and_their_median_latency():
    events, names, _ = _recorded("trace-desktop-keys.json")
    calls = [e.tsc for _, e in events if str(e.kind) == "IpcCall"]
    replies = [e.tsc for _, e in events if str(e.kind) == "IpcReply"]
    [row] = trace.summary(events, names)["endpoints"]
    assert row["name"] == "endpoint 1 (console)" and row["calls"] == row["replies"] == 2
    assert row["median_latency"] == statistics.median(r - c for c, r in zip(calls, replies))


def test_the_drainer_keeps_each_event_once_and_counts_what_was_overwritten():
    """The ring as guest memory, laid out by the kernel's DWARF."""
    reader = StateReader(SETTINGS.kernel_elf)
    ring, written = reader.layout.member("events"), reader.layout.member("events_written")
    event, capacity = ring.type.element, ring.type.count
    memory = bytearray(reader.size)

    def emit(first: int, count: int) -> None:
        for number in range(first, first + count):
            at = ring.offset + (number % capacity) * event.size
            struct.pack_into("<Q", memory, at + event.member("tsc").offset, 5000 + number)
        struct.pack_into("<Q", memory, written.offset, first + count)

    def read(address: int, size: int) -> bytes:
        return bytes(memory[address - reader.address:address - reader.address + size])

    drainer = trace.RingDrainer(reader)
    emit(0, 5)
    assert drainer.drain(read) == 5 and drainer.drain(read) == 0
    emit(5, capacity + 10)  # ten more than the ring holds since the last drain
    kept = drainer.drain(read)
    numbers = [number for number, _ in drainer.drained.events]
    assert drainer.drained.lost == [(5, 11)] and kept == capacity - 1
    assert numbers == [0, 1, 2, 3, 4, *range(16, capacity + 15)]
    assert all(e.tsc == 5000 + n for n, e in drainer.drained.events)


def _trace(tmp_path: Path, *args: str, check: bool = True) -> tuple[subprocess.CompletedProcess, list[dict], dict]:
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "trace", *args, "--out", str(tmp_path / "trace.json")],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 or not check, done.stdout + done.stderr
    return (done, json.loads((tmp_path / "trace.json").read_text())["traceEvents"],
            json.loads((tmp_path / "trace.summary.json").read_text()))


def test_pingpong_is_traced_and_every_event_accounted_for(tmp_path):
    """Every event ping/pong's kernel records (about 39600, over two rings' worth) is in the trace, or
    counted lost with where: on an idle host none is (README), on a host too busy to run the
    drainer for a tenth of a second some may be, and the trace must say so exactly."""
    done, out, summary = _trace(tmp_path, "--config", "configs/pingpong.yaml", "--seconds", "90", check=False)
    whole = json.loads((tmp_path / "trace.json").read_text())["otherData"]
    lost = [(e["args"]["first event number"], e["args"]["count"]) for e in out if e.get("cat") == "lost"]
    assert whole["events"] + whole["dropped"] == whole["last event"] + 1 - whole["first event"] > 2 * 16384
    assert sum(count for _, count in lost) == summary["dropped"]
    assert done.returncode == (1 if summary["dropped"] else 0), done.stdout
    [row] = summary["endpoints"]
    assert row["name"] == "endpoint 1 (pong)" and row["replies"] > 1000
    if not summary["dropped"]:
        assert row["calls"] == row["replies"]
        ends = {e["id"] for e in out if e["ph"] == "f" and e["cat"] == "ipc"}
        assert len(ends) == row["calls"]
        # The signal+wait figure: each of ping's and pong's signals wakes the other, an arrow
        # to its run (the very last one's may not come before the guest ends).
        signals = [e for e in out if e["ph"] == "i" and e["name"].startswith("signal notification")]
        signal_ends = [e for e in out if e["ph"] == "f" and e["cat"] == "signal"]
        assert len(signals) > 4000 and len(signals) - 1 <= len(signal_ends) <= len(signals)


def test_keys_typed_on_the_desktop_are_traced_from_irq_to_console(tmp_path):
    _, out, summary = _trace(tmp_path, "--config", "configs/desktop.yaml", "--seconds", "10", "--keys", "hello",
                             "--keys-after", r"^\[ps2\] ready$")
    assert summary["dropped"] == 0
    [row] = summary["endpoints"]
    assert row["name"] == "endpoint 1 (console)" and row["calls"] >= 5  # one call per character
    irq_ends = [e for e in out if e["ph"] == "f" and e["cat"] == "irq"]
    tracks = {e["tid"]: e["args"]["name"] for e in out if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 2}
    assert irq_ends and all(tracks[e["tid"]].startswith("ps2") for e in irq_ends)
    # Each IRQ signals the notification ps2 waits on, named after the line.
    irqs = [e for e in out if e["ph"] == "i" and e["name"] == "IRQ 1"]
    signals = [e for e in out if e["ph"] == "i" and e["name"].startswith("signal")]
    assert len(signals) == len(irqs) and all(re.fullmatch(r"signal notification \d+ \(irq1\)", e["name"]) for e in signals)


def test_a_kill_on_request_and_the_restart_are_in_the_ring(kwast_scenario):
    seen: dict[str, list[dict]] = {}

    async def the_ring_as_a_trace(context):
        snap = await context.state()
        names = trace.Names()
        names.learn(snap)
        out = trace.chrome_trace(await context.ring_now(), names, snap.tsc_per_us)["traceEvents"]
        seen["kills"] = [e for e in out if e["name"].startswith("kill requested")]
        seen["restarts"] = [e for e in out if e["name"] == "restart"]

    kwast_scenario(model.Boot(), model.Expect(r"^\[ps2\] ready$", timeout=60), model.Inject(action="kill", server="console"),
                   # init's line, not "serving": under load boot's own "serving" can follow "ready"
                   model.Expect(r"^\[init\] restarting console \(killed: killed on request", timeout=30),
                   model.Expect(r"^\[console\] serving$", timeout=30), model.Call(the_ring_as_a_trace),
                   config="configs/desktop.yaml")
    [kill], [restart] = seen["kills"], seen["restarts"]
    assert restart["args"]["previous process"] == kill["args"]["process"] and restart["ts"] > kill["ts"]


def test_each_cpu_has_its_track_of_what_it_ran(tmp_path):
    """Four CPUs: every event says its CPU, so each CPU's track holds the threads it ran, and the
    pinned console's runs are all on CPU 3's."""
    config = tmp_path / "smp4-pinned.yaml"
    config.write_text((SETTINGS.configs_dir / "smp4.yaml").read_text().replace(
        "console:serve=console:ports=0x3f8+8", "console:serve=console:ports=0x3f8+8:cpu=3"))
    _, out, summary = _trace(tmp_path, "--config", str(config), "--seconds", "10", "--keys", "four",
                             "--keys-after", r"^\[ps2\] ready$")
    assert summary["dropped"] == 0
    # A CPU that only idled in the window recorded nothing: it has no track.
    cpus = {e["tid"]: e["args"]["name"] for e in out if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 1}
    assert {0, 3} <= cpus.keys() <= {0, 1, 2, 3} and all(name == f"CPU {tid}" for tid, name in cpus.items())
    runs = [e for e in out if e["ph"] == "X" and e["pid"] == 1]
    assert {e["tid"] for e in runs} == cpus.keys()
    console_runs = {e["tid"] for e in runs if e["name"].startswith("console (")}
    assert console_runs == {3}, console_runs
