"""Helpers for tests on a live machine: the real kernel held up (`hold`) in real QEMU."""

from __future__ import annotations

import contextlib
import dataclasses

from conftest import SETTINGS
from workbench import config
from workbench.kernel_image import KernelImage
from workbench.qemu import Machine
from workbench.state import MmapMemory, StateReader, wait_published


@contextlib.asynccontextmanager
async def held_machine(run: bool = True, config_path=None, **changes):
    """A machine running the kernel with `hold` and guest RAM in a file (the default config,
    or `config_path`); with `run` it has published its debug state when this yields
    (machine, reader, mmap memory)."""
    hardware = dataclasses.replace(config.load(config_path or SETTINGS.default_config), **changes)
    with KernelImage(SETTINGS.kernel_elf) as image:
        async with Machine(SETTINGS, hardware, image, "hold", ram_file=True) as machine:
            reader = StateReader(image.path)
            memory = MmapMemory(machine.ram_path)
            try:
                if run:
                    await machine.resume()
                    await wait_published(reader, memory)
                yield machine, reader, memory
            finally:
                memory.close()
