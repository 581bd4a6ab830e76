"""`kwast-bench profile`: where the guest's instructions go, counted, not sampled.

QEMU logs every translation block it executes and, when it translates one, the block's
instructions (`-d exec,nochain,in_asm`; no chaining, so every execution is logged). Counting
executions times instructions gives each guest instruction's exact count; addresses are named
by the kernel ELF's symbols and, for wasm servers, by their artifacts' symbols (each `.cwasm`
is an ELF whose `.symtab` names `wasm[0]::function[N]::NAME` at its `.text` offset) placed at
the code address the kernel prints at a server's first start. The guest is not changed.

A window (`--from`/`--to`, serial-line patterns) is found exactly: the kernel writes the
console one byte per `out` in its serial driver, so the n-th execution of that instruction is
the n-th byte of the console. The profile is flat (self counts per function): call stacks are
not reconstructed yet.
"""

from __future__ import annotations

import bisect
import collections
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.elffile import ELFFile

from .bench import SERVER_READY

_TRACE = re.compile(rb"^Trace \d+: (0x[0-9a-f]+) \[[0-9a-f]+/([0-9a-f]+)/")


class ProfileError(Exception):
    pass


@dataclass
class Symbols:
    """Address ranges and their names, looked up by bisection."""
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, ranges: list[tuple[int, int, str]]) -> Symbols:
        symbols = cls()
        for start, end, name in sorted(ranges):
            symbols.starts.append(start)
            symbols.ends.append(end)
            symbols.names.append(name)
        return symbols

    def name(self, address: int) -> str | None:
        index = bisect.bisect_right(self.starts, address) - 1
        return self.names[index] if index >= 0 and address < self.ends[index] else None


# What llvm-cxxfilt leaves of Rust's legacy mangling: escapes, a hash, LLVM's suffixes.
_ESCAPES = {"$LT$": "<", "$GT$": ">", "$C$": ",", "$RF$": "&", "$BP$": "*", "$u20$": " ", "$u27$": "'",
            "$u5b$": "[", "$u5d$": "]", "$u7b$": "{", "$u7d$": "}", "$u7e$": "~", "..": "::"}


def _demangle(names: list[str]) -> list[str]:
    names = [re.sub(r"\.llvm\.\d+$", "", name) for name in names]
    done = subprocess.run(["llvm-cxxfilt"], input="\n".join(names), capture_output=True, text=True, check=True)
    clean = []
    for line in done.stdout.split("\n")[:len(names)]:
        line = re.sub(r"( \(\.llvm\.\d+\))+$", "", line)
        line = re.sub(r"(::h[0-9a-f]{16}|\.llvm\.\d+)$", "", line)
        clean.append(re.sub("|".join(re.escape(e) for e in _ESCAPES), lambda m: _ESCAPES[m[0]], line).lstrip("_"))
    return clean


def _functions(elf_path: Path) -> list[tuple[int, int, str]]:
    with elf_path.open("rb") as file:
        elf = ELFFile(file)
        table = elf.get_section_by_name(".symtab")
        if table is None:
            raise ProfileError(f"{elf_path}: no symbol table")
        found = [(s["st_value"], s["st_value"] + s["st_size"], s.name) for s in table.iter_symbols()
                 if s["st_info"]["type"] == "STT_FUNC" and s["st_size"] > 0 and s.name]
    return found


def kernel_symbols(elf_path: Path) -> list[tuple[int, int, str]]:
    found = _functions(elf_path)
    names = _demangle([name for _, _, name in found])
    return [(start, end, name) for (start, end, _), name in zip(found, names)]


def server_symbols(server: str, artifact: Path, code: int) -> list[tuple[int, int, str]]:
    """`server!function` for each function of the artifact, its `.text` placed at `code`."""
    return [(code + start, code + end, f"{server}!{name.rsplit('::', 1)[-1]}")
            for start, end, name in _functions(artifact)]


def symbols(kernel_elf: Path, serial: str, artifacts: dict[str, Path]) -> Symbols:
    """The kernel's functions and those of every server whose first start `serial` shows."""
    ranges = kernel_symbols(kernel_elf)
    for ready in SERVER_READY.finditer(serial):
        artifact = artifacts.get(ready["file"])
        if artifact is not None and ready["code"]:
            ranges += server_symbols(ready["name"], artifact, int(ready["code"], 16))
    return Symbols.of(ranges)


def window_bytes(serial: str, start: str | None, end: str | None) -> tuple[int, int | None]:
    """The console byte offsets where the first line matching `start` ends and where the first
    later line matching `end` ends. The kernel writes each newline as \\r\\n."""
    offset, opened, lines = 0, 0 if start is None else None, serial.split("\n")
    for line in lines[:-1]:
        offset += len(line.encode()) + 2
        if opened is None:
            if re.search(start, line):
                opened = offset
        elif end is not None and re.search(end, line):
            return opened, offset
    if opened is None:
        raise ProfileError(f"no console line matches --from {start!r}")
    if end is not None:
        raise ProfileError(f"no console line after the --from line matches --to {end!r}")
    return opened, None


@dataclass
class Counts:
    """Executions of each translated block, and what the blocks hold."""
    blocks: dict[int, list[tuple[int, str]]]  # block id -> [(address, instruction text)]
    executed: collections.Counter             # block id -> executions inside the window

    def per_instruction(self) -> collections.Counter:
        counts: collections.Counter = collections.Counter()
        for block, times in self.executed.items():
            for address, _ in self.blocks[block]:
                counts[address] += times
        return counts


def read_log(path: Path, kernel: Symbols, window: tuple[int, int | None] = (0, None)) -> Counts:
    """Counts block executions in QEMU's exec/in_asm log, within the console-byte `window`."""
    blocks: dict[int, list[tuple[int, str]]] = {}
    pending: dict[int, list[tuple[int, str]]] = {}  # translated, not yet executed: by guest pc
    by_host: dict[bytes, int] = {}                  # QEMU's block (host code address) -> block id
    outs_in: dict[int, int] = {}                    # block id -> console byte writes in it
    executed: collections.Counter = collections.Counter()
    written, (first, last) = 0, window
    translating: list[tuple[int, str]] | None = None
    with path.open("rb") as log:
        for line in log:
            if translating is not None:
                if line.startswith(b"0x"):
                    address, _, rest = line.partition(b":")
                    translating.append((int(address, 16), rest.decode(errors="replace").strip()))
                    continue
                if translating:
                    pending[translating[0][0]] = translating
                translating = None
            if line.startswith(b"IN:"):
                translating = []
            elif line.startswith(b"Trace"):
                found = _TRACE.match(line)
                if found is None:
                    continue
                host, pc = found[1], int(found[2], 16)
                if pc in pending:  # its first execution: this host block is that translation
                    block = len(blocks)
                    blocks[block] = _strip_bytes(pending.pop(pc))
                    by_host[host] = block
                    outs_in[block] = _console_writes(kernel, blocks[block])
                block = by_host.get(host)
                if block is None:
                    continue
                if written >= first and (last is None or written < last):
                    executed[block] += 1
                written += outs_in[block]
    return Counts(blocks, executed)


def _console_writes(kernel: Symbols, block: list[tuple[int, str]]) -> int:
    """Bytes a block writes to the serial data port: an `outb` after `movw $0x3f8, %dx` in the
    same block (the compiler inlines the port write into callers of any name), or one inside
    the serial writer itself, which may take the port as a value."""
    writes, port = 0, None
    for address, text in block:
        if re.match(r"movw? +\$0x3f8, %dx", text):
            port = 0x3F8
        elif "%dx" in text.partition(",")[2] and not text.startswith("out"):
            port = None
        elif text.startswith("outb") and "%al, %dx" in text:
            name = kernel.name(address) or ""
            if "init" not in name and (port == 0x3F8 or "serial" in name):  # init sets the baud rate
                writes += 1
    return writes


def _strip_bytes(insns: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """`ea 5b e0 00 f0   ljmpw ...` -> `ljmpw ...`: in_asm prints each instruction's bytes first."""
    return [(address, re.sub(r"^([0-9a-f]{2} )+\s*", "", text)) for address, text in insns]


@dataclass
class Profile:
    total: int
    by_function: list[tuple[str, int]]  # most instructions first

    def table(self, top: int = 30) -> str:
        lines = [f"{self.total} guest instructions in the window", "",
                 f"{'instructions':>14} {'%':>6}  function"]
        for name, count in self.by_function[:top]:
            lines.append(f"{count:>14} {100 * count / self.total:>6.2f}  {name}")
        return "\n".join(lines)

    def folded(self) -> str:
        """One `function count` line per function: what flame-graph tools read."""
        return "".join(f"{name.replace(' ', '_')} {count}\n" for name, count in self.by_function)

    def speedscope(self, name: str) -> dict:
        frames = [{"name": function} for function, _ in self.by_function]
        return {"$schema": "https://www.speedscope.app/file-format-schema.json", "shared": {"frames": frames},
                "profiles": [{"type": "sampled", "name": name, "unit": "none", "startValue": 0, "endValue": self.total,
                              "samples": [[i] for i in range(len(frames))],
                              "weights": [count for _, count in self.by_function]}]}


def attribute(counts: Counts, names: Symbols) -> Profile:
    functions: collections.Counter = collections.Counter()
    for address, count in counts.per_instruction().items():
        functions[names.name(address) or f"[unknown {address:#x}]"] += count
    return Profile(sum(functions.values()), functions.most_common())


def write(profile: Profile, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    table, folded, speedscope = folder / "profile.txt", folder / "profile.folded", folder / "profile.speedscope.json"
    table.write_text(profile.table(top=len(profile.by_function)) + "\n")
    folded.write_text(profile.folded())
    speedscope.write_text(json.dumps(profile.speedscope(name)))
    return [table, folded, speedscope]
