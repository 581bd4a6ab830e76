"""Shared test set-up: one build per test run, a booter for the real kernel in real QEMU,
and a check after every test that no QEMU outlived it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from pathlib import Path

import pytest

from workbench import build, config, settings as settings_module
from workbench.kernel_image import KernelImage
from workbench.qemu import BootOutcome, boot as boot_machine

SETTINGS = settings_module.load(Path(__file__).parent)


def pytest_sessionstart(session: pytest.Session) -> None:
    # Build once, in the controller; xdist workers share the artifacts.
    if hasattr(session.config, "workerinput"):
        return
    try:
        build.build_all(SETTINGS)
    except build.BuildError as error:
        pytest.exit(f"{error}\n" + "\n".join(error.output[-60:]), returncode=1)


@pytest.fixture(scope="session")
def settings() -> settings_module.Settings:
    return SETTINGS


@pytest.fixture(scope="session")
def kernel_image():
    with KernelImage(SETTINGS.kernel_elf) as image:
        yield image


@pytest.fixture(scope="session")
def default_config() -> config.HardwareConfig:
    return config.load(SETTINGS.default_config)


def booter(kernel_image, default_config):
    """Boots the kernel to its exit: `run(append="test=x", timeout=30, **config_changes)`."""

    def run(append: str = "", timeout: float = 60, **changes) -> BootOutcome:
        hardware = dataclasses.replace(default_config, **changes)
        return asyncio.run(boot_machine(SETTINGS, hardware, kernel_image, timeout, append))

    return run


@pytest.fixture
def boot(kernel_image, default_config):
    return booter(kernel_image, default_config)


def assert_clean_exit(outcome: BootOutcome) -> None:
    """Fails with the kernel's own words (a panic message, a fault report) when it did not shut down cleanly."""
    assert outcome.ok, f"{outcome.describe()}\n--- serial console ---\n{outcome.serial}"


def qemu_children(prefix: str = "qemu-system") -> list[int]:
    """QEMU processes (or others named `prefix`...) whose parent is this test process."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == me and name.startswith(prefix):
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_qemu_left_behind():
    yield
    assert qemu_children() == [], "a QEMU process outlived its test"


@pytest.fixture(autouse=True)
def no_gdb_left_behind():
    yield
    assert qemu_children("gdb") == [], "a GDB process outlived its test"
