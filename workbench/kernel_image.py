"""What the workbench learns from the kernel ELF itself: symbols and DWARF-declared constants.

The kernel declares things once (exit codes, tests, later its debug-state layout); the host
reads them from the binary instead of keeping copies that could drift.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

from elftools.elf.elffile import ELFFile

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

    def _cached(self, what: str, compute):
        """`compute()`, remembered per ELF version in a file beside the ELF: walking the DWARF
        takes seconds (wasmtime's generics are instantiated in the kernel crate), reading the
        answer back takes microseconds."""
        cache_file = self.path.with_name(self.path.name + ".kwast-cache.json")
        stat = self.path.stat()
        identity = [stat.st_size, stat.st_mtime_ns]
        try:
            cache = json.loads(cache_file.read_text())
            if cache.get("identity") != identity:
                cache = {"identity": identity, "values": {}}
        except (OSError, ValueError):
            cache = {"identity": identity, "values": {}}
        if what not in cache["values"]:
            cache["values"][what] = compute()
            temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(cache))
            temporary.replace(cache_file)
        return cache["values"][what]

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
        values = self._cached(f"enum {path}", lambda: _kernel_enum(str(self.path), path))
        if values is None:
            raise KernelImageError(f"{self.path}: no enum {path!r} in the DWARF (is debug info on?)")
        return values

    @cached_property
    def exit_codes(self) -> dict[str, int]:
        """isa-debug-exit codes the kernel writes, as QEMU's process exit status: (code << 1) | 1."""
        return {name: (value << 1) | 1 for name, value in self.enum("qemu_exit::ExitCode").items()}


def _kernel_enum(elf_path: str, path: str) -> dict[str, int] | None:
    """Only the kernel crate's own compilation units are searched."""
    *modules, name = path.split("::")
    wanted = name.encode()
    with open(elf_path, "rb") as file:
        dwarf = ELFFile(file).get_dwarf_info()
        for unit in dwarf.iter_CUs():
            unit_name = unit.get_top_DIE().attributes.get("DW_AT_name")
            if unit_name is None or b"/kwast_kernel." not in unit_name.value:
                continue
            for die in unit.iter_DIEs():
                if die.tag == "DW_TAG_enumeration_type" and die.attributes.get("DW_AT_name") is not None \
                        and die.attributes["DW_AT_name"].value == wanted and _within(die, modules):
                    values = {child.attributes["DW_AT_name"].value.decode(): child.attributes["DW_AT_const_value"].value
                              for child in die.iter_children() if child.tag == "DW_TAG_enumerator"}
                    if values:
                        return values
    return None


def _within(die, modules: list[str]) -> bool:
    """Whether the namespaces enclosing `die` end with `modules` (innermost last)."""
    names = []
    parent = die.get_parent()
    while parent is not None and parent.tag == "DW_TAG_namespace":
        names.append(parent.attributes["DW_AT_name"].value.decode() if "DW_AT_name" in parent.attributes else "")
        parent = parent.get_parent()
    names.reverse()
    return not modules or names[-len(modules):] == modules
