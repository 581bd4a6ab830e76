"""The wasm-vs-native benchmark computes right answers: servers/bench's kernels, compiled for the
host from the same C, give the checksums that both the kernel (natively) and the bench server
(as wasm) report in one boot. A fast wrong answer fails here; the speed is `kwast-bench bench`'s."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import subprocess
import sys
import time

import pytest

from conftest import SETTINGS
from workbench import bench, bench_history, config, host_parallel
from workbench.qemu import boot

SOURCE = SETTINGS.servers_dir / "bench"

HOST_MAIN = r"""
#include <stdio.h>
#include "kernels.h"
int main(void) {
    for (uint32_t i = 0; i < bench_kernel_count; i++)
        printf("%s %08x\n", bench_kernels[i].name, bench_kernels[i].run(bench_kernels[i].size));
    return 0;
}
"""


@pytest.fixture(scope="module")
def host_checksums(tmp_path_factory) -> dict[str, str]:
    build = tmp_path_factory.mktemp("bench-host")
    (build / "main.c").write_text(HOST_MAIN)
    sources = [str(p) for p in sorted(SOURCE.glob("*.c")) if p.name != "main.c"]
    subprocess.run(["clang", "-O2", "-ffp-contract=off", f"-I{SOURCE}", "-o", str(build / "bench"),
                    str(build / "main.c"), *sources], check=True)
    lines = subprocess.run([str(build / "bench")], check=True, capture_output=True, text=True).stdout.split("\n")
    return dict(line.split() for line in lines if line)


def test_native_and_wasm_compute_what_the_host_computes(kernel_image, host_checksums):
    hardware = config.load(SETTINGS.configs_dir / "wasm-vs-native.yaml")
    outcome = asyncio.run(boot(SETTINGS, hardware, kernel_image, timeout=120))
    assert outcome.ok, outcome.describe()
    sides = bench.computed(outcome.serial)
    assert len(host_checksums) >= 7
    for side in ("native", "wasm"):
        assert {name: checksum for name, (_, checksum) in sides[side].items()} == host_checksums, side
        assert all(count > 100_000 for count, _ in sides[side].values()), f"{side}: every kernel does real work"


def test_a_wrong_wasm_answer_is_an_error_not_a_figure():
    right = "native crc32: 1000 instructions, checksum 0badcafe\n[bench] crc32: 1500 instructions, checksum 0badcafe\n"
    assert [(f.name, f.value) for f in bench.ratios(bench.computed(right))] == \
        [("wasm/native crc32", 1.5), ("wasm/native geometric mean", pytest.approx(1.5))]
    with pytest.raises(bench.BenchError, match="crc32: the wasm checksum 0badcafd differs from the native 0badcafe"):
        bench.ratios(bench.computed(right.replace("1500 instructions, checksum 0badcafe", "1500 instructions, checksum 0badcafd")))


def test_history_keeps_one_run_per_commit_and_charts_each_figure(tmp_path):
    def figure(name: str, value: float, target: float | None) -> dict:
        return {"suite": "wasm", "name": name, "value": value, "unit": "ratio", "target": target, "met": None}

    history = tmp_path / "history.json"
    bench_history.append(history, "aaa1111", [figure("wasm/native sort", 2.2, 1.6)])
    bench_history.append(history, "bbb2222", [figure("wasm/native sort", 1.9, 1.6), figure("thread switch", 2176, None)])
    runs = bench_history.append(history, "bbb2222", [figure("wasm/native sort", 1.05, 1.6)])  # measured again
    assert [(run["commit"], [f["value"] for f in run["figures"]]) for run in runs] == [("aaa1111", [2.2]), ("bbb2222", [1.05])]
    charts = {path.name: path.read_text() for path in bench_history.charts(runs, tmp_path / "charts")}
    assert sorted(charts) == ["wasm-native-sort.svg"]
    svg = charts["wasm-native-sort.svg"]
    assert "aaa1111" in svg and "bbb2222" in svg and ">target<" in svg and ">measured<" in svg


def test_a_restart_reuses_the_checked_and_linked_module(kernel_image):
    # Exact instruction counts (-icount shift=0): a budget, not a timing.
    hardware = config.load(SETTINGS.configs_dir / "server-start.yaml")
    outcome = asyncio.run(boot(SETTINGS, hardware, kernel_image, timeout=120))
    assert outcome.ok, outcome.describe()
    first, restarts = bench.starts(outcome.serial, "fault_oob")
    assert len(restarts) == 3
    assert all(restart <= first * bench.RESTART_TARGET for restart in restarts), (first, restarts)


def test_starts_are_read_in_order_and_a_second_first_start_is_an_error():
    line = "server s: s.cwasm ready in {} us, {} cycles (100 bytes, {}) at TSC 1\n"
    serial = line.format(40, 40000, "first start, code at 0x20000001000") + line.format(2, 2000, "module kept from an earlier start")
    assert bench.starts(serial, "s") == (40000, [2000])
    with pytest.raises(bench.BenchError, match="expected one first start of s"):
        bench.starts(serial + line.format(40, 40000, "first start"), "s")


def test_a_failing_server_ends_a_benchmark_run_with_its_line(kernel_image, tmp_path):
    # One server exits with code 3 while the other computes forever: the run ends on the exit's
    # line, not at its timeout (whose error would say "timed out").
    (tmp_path / "failing.yaml").write_text("memory: 64M\nservers:\n  - name: fault_infinite_loop\n  - name: wasi_exit\n")
    settings = dataclasses.replace(SETTINGS, configs_dir=tmp_path)
    fatal = re.compile(r"^server wasi_exit exited with code [1-9]", re.M)
    with pytest.raises(bench.BenchError, match=r"^the failing run failed \(server wasi_exit exited with code 3\):"):
        asyncio.run(bench._console(settings, kernel_image, "failing", timeout=120, fatal=fatal))


def test_ping_figures_carry_their_targets_and_minima():
    serial = "".join(f"[ping] {what}: median {median}, min {low} cycles\n" for what, median, low in (
        ("64-byte call+reply", 1200, 1190), ("4096-byte call+reply", 2300, 2290), ("call+reply passing a handle", 1500, 1500),
        ("signal+wait", 600, 590), ("thread switch", 480, 470)))
    figures = {f.name: f for f in bench.ping_figures(serial)}
    assert (figures["IPC 64-byte call+reply"].value, figures["IPC 64-byte call+reply"].detail) == (1200, "min 1190")
    assert figures["IPC 64-byte call+reply"].met is False
    assert figures["IPC 4096-byte call+reply"].target == 1200 + bench.BIG_CALL_EXTRA and figures["IPC 4096-byte call+reply"].met is False
    assert figures["thread switch"].met is True
    assert figures["call passing a handle / plain call"].value == pytest.approx(1.25) and figures["call passing a handle / plain call"].met
    assert figures["signal+wait / switch"].value == pytest.approx(1.25) and figures["signal+wait / switch"].met is False
    with pytest.raises(bench.BenchError, match="ping did not report signal\\+wait"):
        bench.ping_figures(serial.replace("signal+wait", "signal or wait"))


def test_the_boot_anchor_is_a_multiboot_kernel_that_exits_at_once():
    # The boot figure's denominator must be a real boot: QEMU loads it as it loads Kwast and
    # it leaves through isa-debug-exit with success, having printed nothing.
    hardware = dataclasses.replace(config.load(SETTINGS.configs_dir / "desktop.yaml"), servers=[])
    outcome = asyncio.run(boot(SETTINGS, hardware, bench.anchor(SETTINGS), timeout=30))
    assert outcome.status == "success", outcome.describe()
    assert outcome.serial == ""


def test_the_speedup_must_reach_its_target_and_names_the_host():
    serial = "parallel: 2 servers on 1 CPU: 7000 cycles, on 2 CPUs: 4000 cycles, speed-up 1.75\n"
    figure = bench.speedup(serial)
    assert figure.value == pytest.approx(1.75) and figure.at_least and figure.met
    assert "host has" in figure.detail and "target >= 1.7: met" in figure.line()
    assert bench.speedup(serial.replace("4000", "5000")).met is False
    with pytest.raises(bench.BenchError, match="bench=parallel"):
        bench.speedup("cpus: 2 online\n")


def test_host_load_counts_other_processes_busy_cores():
    # A process kept busy for a second, not yet reaped (so not one of ours by `os.times`), is
    # the "other work" a speed-up figure is said beside.
    busy = "import time\nend = time.monotonic() + 1.0\nwhile time.monotonic() < end: pass\n"
    with bench.HostLoad() as load:
        other = subprocess.Popen([sys.executable, "-c", busy])
        time.sleep(1.2)
    other.wait()
    assert load.cores >= 0.5
    assert "0.50 of them busy" in bench.speedup(
        "parallel: 2 servers on 1 CPU: 7000 cycles, on 2 CPUs: 4000 cycles, speed-up 1.75\n", 0.5).detail


def test_the_hosts_own_speedup_runs_the_guests_program(tmp_path):
    # The anchor beside the speed-up is servers/compute itself, built for the host: it counts
    # what the guest's copies count, and each pair of rounds gives one ratio.
    program = host_parallel.compute_for_host(dataclasses.replace(SETTINGS, build_dir=tmp_path))
    printed = subprocess.run([str(program), "20000"], check=True, capture_output=True, text=True).stdout
    assert "primes below 20000: 2262" in printed
    host = host_parallel.HostParallel(program)
    host.measure(pairs=3)
    assert len(host.ratios) == 3 and all(r > 0 for r in host.ratios)
    assert host.speedup == sorted(host.ratios)[1]


def test_the_parallel_benchmark_runs_both_placements_to_the_end(kernel_image):
    # Its figure is a speed-up only with the CPUs on host threads of their own (`kwast-bench
    # bench --suite smp`); here, counted, it must run every server of both placements to its end.
    parallel = config.load(SETTINGS.configs_dir / "parallel.yaml")
    hardware = dataclasses.replace(parallel, icount=True, cmdline="bench=parallel work=20000 pairs=9",
                                   cpu=dataclasses.replace(parallel.cpu, threads="single"))
    outcome = asyncio.run(boot(SETTINGS, hardware, kernel_image, timeout=120))
    assert outcome.ok, outcome.describe()
    assert outcome.serial.count("[compute] primes below 20000: 2262") == 2 * 2 * 9  # 2 servers, 2 placements, 9 pairs
    figure = bench.speedup(outcome.serial)
    # The figure is the median pair's ratio, and every pair's ratio is shown.
    ratios = sorted(float(r) for r in figure.detail.split("median of 9 pairs: ")[1].split())
    assert len(ratios) == 9 and figure.value == pytest.approx(ratios[4], abs=0.01)
