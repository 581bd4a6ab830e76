"""What the workbench learns from the kernel ELF itself: symbols, and constants the kernel declares
in DWARF (read through `dwarf`, the one DWARF reader).

The kernel declares things once (exit codes, tests, its debug-state layout); the host
reads them from the binary instead of keeping copies that could drift.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from elftools.elf.elffile import ELFFile

from . import dwarf

TEST_SYMBOL_PREFIX = "kwast_test_"


class KernelImageError(Exception):
    pass


class KernelImage:
    def __init__(self, path: Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise KernelImageError(f"{self.path}: no kernel image (run `kwast-bench build`)")
        self._file = self.path.open("rb")
        self.elf = ELFFile(self._file)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> KernelImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def symbols(self) -> dict[str, int]:
        table = self.elf.get_section_by_name(".symtab")
        if table is None:
            raise KernelImageError(f"{self.path}: no symbol table (was the kernel stripped?)")
        return {s.name: s["st_value"] for s in table.iter_symbols() if s.name}

    def tests(self) -> list[str]:
        """Names of the in-kernel tests (see kernel/src/ktest.rs)."""
        return sorted(n[len(TEST_SYMBOL_PREFIX):] for n in self.symbols if n.startswith(TEST_SYMBOL_PREFIX))

    def enum(self, path: str) -> dict[str, int]:
        """The enumerators of the kernel's enum `path` ("Name", or a path such as
        "ipc::error::Error" naming the modules around it), from DWARF."""
        try:
            return {name: value for value, name in dwarf.enum(self.path, path).names}
        except dwarf.LayoutError as error:
            raise KernelImageError(str(error)) from None

    @cached_property
    def exit_codes(self) -> dict[str, int]:
        """isa-debug-exit codes the kernel writes, as QEMU's process exit status: (code << 1) | 1."""
        return {name: (value << 1) | 1 for name, value in self.enum("qemu_exit::ExitCode").items()}

