"""The kernel's debug port (kernel/src/debug/port.rs): a UART on which a recorded run's requests
reach the kernel, because QEMU logs what a UART receives and replays it at the same instruction.
Where it is and how a write frame is laid out are read from the kernel's ELF."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import dwarf


@dataclass(frozen=True)
class DebugPort:
    base: int         # the UART's I/O base
    write_tag: int    # a write frame's first byte
    max_write: int    # the most bytes one frame writes
    window: int       # the most bytes sent ahead of what the kernel has taken
    header: dwarf.Struct
    bytes_taken: int  # the address of the kernel's count of the bytes it has taken

    def frames(self, address: int, data: bytes) -> list[bytes]:
        """Frames that write `data` at `address`, split at `max_write` bytes."""
        out = []
        for start in range(0, len(data), self.max_write):
            chunk = data[start:start + self.max_write]
            header = bytearray(self.header.size)
            for name, value in (("tag", self.write_tag), ("address", address + start), ("length", len(chunk))):
                member = self.header.member(name)
                header[member.offset:member.offset + member.type.size] = value.to_bytes(member.type.size, "little")
            out.append(bytes(header + chunk))
        return out


def of(elf_path: Path | str) -> DebugPort:
    declared = dwarf.variable(elf_path, "KWAST_DEBUG_PORT")
    assert isinstance(declared.type, dwarf.Struct)
    values = {m.name: int.from_bytes(declared.initial[m.offset:m.offset + m.type.size], "little")
              for m in declared.type.members}
    return DebugPort(values["base"], values["write_tag"], values["max_write"], values["window"],
                     dwarf.struct_layout(elf_path, "WriteFrame"),
                     declared.address + declared.type.member("bytes_taken").offset)
