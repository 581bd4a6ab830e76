"""In-kernel tests (kernel/src/ktest.rs), one QEMU boot each, listed from the kernel ELF."""

from __future__ import annotations

import dataclasses
import re

from conftest import SETTINGS, assert_clean_exit
from workbench.kernel_image import KernelImage


def pytest_generate_tests(metafunc):
    if "kernel_test" in metafunc.fixturenames:
        with KernelImage(SETTINGS.kernel_elf) as image:
            metafunc.parametrize("kernel_test", image.tests())


def test_kernel(kernel_test, boot, default_config):
    # Counted in guest instructions (-icount shift=0): the guest's clocks then follow its own
    # progress, so timing tests (sleep accuracy, preemption) do not depend on how loaded the
    # host is. Tests of several CPUs (`smp_*`) get four, run by one QEMU thread in turn: as
    # repeatable as one.
    cpus = 4 if kernel_test.startswith("smp_") else default_config.cpu.count
    outcome = boot(append=f"test={kernel_test}", timeout=60, icount=True,
                   cpu=dataclasses.replace(default_config.cpu, count=cpus))
    expected = re.search(rf"^ktest {kernel_test}: expecting fault: (.+)$", outcome.serial, re.M)
    if expected is None:
        assert_clean_exit(outcome)
        assert f"ktest {kernel_test}: ok" in outcome.serial
    else:
        # A fault test passes when the kernel reports exactly that fault, by name, and fails.
        report = outcome.serial[expected.end():]
        assert outcome.status == "failure", f"{outcome.describe()}\n{outcome.serial}"
        assert expected.group(1) in report, outcome.serial
        assert f"ktest {kernel_test}: ok" not in outcome.serial


def test_ipc_copies_use_avx_where_the_cpu_has_it(boot, default_config):
    """ktest wide_copy runs above on the default CPU model (qemu64, no AVX: `rep movs` only);
    here on one with AVX, where messages of 128 bytes and more go in 32-byte moves, checked
    against their source at every length and alignment the test tries."""
    outcome = boot(append="test=wide_copy", timeout=60, icount=True,
                   cpu=dataclasses.replace(default_config.cpu, model="Haswell"))
    assert_clean_exit(outcome)
    assert "ktest wide_copy: 32-byte moves from 128 bytes" in outcome.serial, outcome.serial
    assert "ktest wide_copy: ok" in outcome.serial


def test_a_cpu_coming_up_waits_for_a_held_heap(boot, default_config):
    """A starting CPU that meets a lock held (here the heap, kept locked 5 ms after each STARTUP
    by `smp.hold_heap_ms`) spins on it like any CPU. It used to spin before it had its per-CPU
    block, fault on it before it had an IDT and reset the machine (1 four-CPU boot in 413)."""
    outcome = boot(append="smp.hold_heap_ms=5 test=heap", timeout=60, icount=True,
                   cpu=dataclasses.replace(default_config.cpu, count=2))
    assert_clean_exit(outcome)
    assert "cpus: 2 online" in outcome.serial and "did not answer" not in outcome.serial, outcome.serial
    assert "ktest heap: ok" in outcome.serial
