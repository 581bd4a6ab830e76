"""`kwast-bench profile`: where the guest's instructions go, counted, not sampled.

QEMU logs every translation block it executes and, when it translates one, the block's
instructions (`-d exec,nochain,in_asm`; no chaining, so every execution is logged). Counting
executions times instructions gives each guest instruction's exact count; addresses are named
by the kernel ELF's symbols (and the calls inlined there, by its DWARF) and, for wasm servers,
by their artifacts' symbols (each `.cwasm` is an ELF whose `.symtab` names
`wasm[0]::function[N]::NAME` at its `.text` offset) placed at the code address the kernel
prints at a server's first start. The guest is not changed.

A window (`--from`/`--to`, serial-line patterns) is found exactly: the kernel writes the
console one byte per `out` in its serial driver, so the n-th execution of that instruction is
the n-th byte of the console.

Call stacks are a shadow stack rebuilt from the executed blocks (`read_log`): a block ending in
a call pushes its return address, a return pops to the frame returning there. QEMU's `-d int`
adds each interrupt with the interrupted stack pointer, which names the thread (its stack slot):
a trap's handler is stacked on the stack it interrupted, and after an `iretq` the resumed
thread's stack is known at its next interrupt and filled in then.
"""

from __future__ import annotations

import bisect
import collections
import difflib
import json
import math
import re
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from . import dwarf
from .bench import SERVER_READY



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


def _functions(elf_path: Path, labels: bool = False) -> list[tuple[int, int, str]]:
    """Sized function symbols; with `labels`, also assembly labels in code (`trap_stubs`,
    `trap_return`), each reaching to the next symbol."""
    with elf_path.open("rb") as file:
        elf = ELFFile(file)
        table = elf.get_section_by_name(".symtab")
        if table is None:
            raise ProfileError(f"{elf_path}: no symbol table")
        code = {i for i, section in enumerate(elf.iter_sections()) if section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR}
        found, marks = [], []
        for s in table.iter_symbols():
            if s["st_info"]["type"] == "STT_FUNC" and s["st_size"] > 0 and s.name:
                found.append((s["st_value"], s["st_value"] + s["st_size"], s.name))
            elif labels and s["st_info"]["type"] == "STT_NOTYPE" and s["st_shndx"] in code and s.name:
                marks.append((s["st_value"], s.name))
    starts = sorted({start for start, _, _ in found} | {address for address, _ in marks})
    for address, name in marks:
        following = starts[bisect.bisect_right(starts, address):]
        if following:
            found.append((address, following[0], name))
    return found


def kernel_symbols(elf_path: Path) -> list[tuple[int, int, str]]:
    found = _functions(elf_path, labels=True)
    names = _demangle([name for _, _, name in found])
    return [(start, end, name) for (start, end, _), name in zip(found, names)]


def server_symbols(server: str, artifact: Path, code: int) -> list[tuple[int, int, str]]:
    """`server!function` for each function of the artifact, its `.text` placed at `code`."""
    return [(code + start, code + end, f"{server}!{name.rsplit('::', 1)[-1]}")
            for start, end, name in _functions(artifact)]


INLINED = " [inlined]"  # marks a call the compiler inlined, as perf marks them


def inlined_frames(kernel_elf: Path, addresses) -> dict[int, tuple[str, ...]]:
    """The calls inlined at each of `addresses` in the kernel (outermost first, from its DWARF),
    named as its symbols are, and marked."""
    found = dwarf.inlined_frames(kernel_elf, addresses)
    linkage = sorted({name for chain in found.values() for name in chain})
    shown = dict(zip(linkage, _demangle(linkage)))
    return {address: tuple(shown[name] + INLINED for name in chain) for address, chain in found.items()}


def symbols(kernel_elf: Path, serial: str, artifacts: dict[str, Path]) -> Symbols:
    """The kernel's functions and those of every server whose first start `serial` shows."""
    ranges = kernel_symbols(kernel_elf)
    for ready in SERVER_READY.finditer(serial):
        artifact = artifacts.get(ready["file"])
        if artifact is not None and ready["code"]:
            ranges += server_symbols(ready["name"], artifact, int(ready["code"], 16))
    return Symbols.of(ranges)


def measure(log: Path, kernel_elf: Path, serial: str, modules: list[str], start: str | None,
            end: str | None) -> tuple[Counts, Profile]:
    """The profile of a machine's exec log (`Machine(exec_log=True)`, `modules()` its servers)
    between the console lines matching `start` and `end`."""
    artifacts = {Path(module.split()[0]).name: Path(module.split()[0]) for module in modules}
    names = symbols(kernel_elf, serial, artifacts)
    counts = read_log(log, names, window_bytes(serial, start, end))
    return counts, attribute(counts, names, lambda addresses: inlined_frames(kernel_elf, addresses))


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


# How a block's last instruction moves the shadow call stack.
_OTHER, _CALL, _RET, _IRET, _INT = range(5)
_INSN = re.compile(r"^\s*((?:[0-9a-f]{2}(?: |$))+)\s*(.*)$")
_INTERRUPT = re.compile(rb"^ *\d+: v=([0-9a-f]+) e=[0-9a-f]+ i=(\d) cpl=\d IP=[0-9a-f]+:([0-9a-f]+) "
                        rb"pc=[0-9a-f]+ SP=[0-9a-f]+:([0-9a-f]+)")
_REWOUND = re.compile(rb"^cpu_io_recompile: rewound execution of TB to ([0-9a-f]+)")
_STOPPED = b"Stopped execution of TB chain"
# Threads' kernel stacks are 4 MiB slots (kernel/src/mm/stacks.rs): an interrupted stack
# pointer's slot says whose stack it was.
_STACK_SLOT_SHIFT = 22


@dataclass(slots=True)
class Block:
    """One translation: its instructions' addresses and text, the address after its last
    instruction (a call's return address), and what that instruction does to the call stack."""
    addresses: list[int]
    texts: list[str]
    after: int
    kind: int
    console: frozenset = frozenset()  # its console byte writes (`out` in the serial driver)

    @classmethod
    def parse(cls, lines: list[tuple[int, str]]) -> Block:
        addresses, texts, after = [], [], 0
        for address, rest in lines:
            found = _INSN.match(rest)
            size = len(found[1].split()) if found else 0
            if found and not found[2] and addresses:  # in_asm wraps a long instruction's bytes
                after += size
                continue
            addresses.append(address)
            texts.append(found[2] if found else rest)
            after = address + size
        last = texts[-1].split(" ", 1)[0] if texts else ""
        kind = (_CALL if last.startswith("call") else _IRET if last.startswith("iret")
                else _RET if last.startswith(("ret", "lret")) else _INT if last in ("int", "int3") else _OTHER)
        return cls(addresses, texts, after, kind)


class _Frames:
    """Shadow call stacks as interned nodes: a node is (parent, where, return address), so a
    push or pop is a dict lookup. `where` names the caller: the call
    instruction, or the instruction an interrupt came at. A thread's stack below where it was
    resumed is unknown until the next interrupt says (by its stack pointer) which thread ran:
    such stacks hang off a placeholder root per (segment, frames popped below it), given its
    real node (`alias`) when the segment is resolved."""

    def __init__(self):
        self.parent, self.where, self.returns = [-1], [0], [0]
        self.children: dict[tuple[int, int, int], int] = {}
        self.placeholders: dict[tuple[int, int], int] = {}
        self.placeholder_of: dict[int, tuple[int, int]] = {}
        self.of_segment: dict[int, list[int]] = collections.defaultdict(list)
        self.alias: dict[int, int] = {}

    def push(self, node: int, where: int, returns: int) -> int:
        key = (node, where, returns)
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = len(self.parent)
            self.parent.append(node)
            self.where.append(where)
            self.returns.append(returns)
        return child

    def placeholder(self, segment: int, popped: int) -> int:
        key = (segment, popped)
        node = self.placeholders.get(key)
        if node is None:
            node = self.placeholders[key] = len(self.parent)
            self.parent.append(-1)
            self.where.append(0)
            self.returns.append(-1)
            self.placeholder_of[node] = key
            self.of_segment[segment].append(node)
        return node

    def pop_to(self, node: int, target: int) -> int | None:
        """The node after a return to `target`: the nearest frame returning there is popped
        (frames above it were left without a return: unwinding). None: no frame returns there."""
        walk = node
        while walk > 0 and walk not in self.placeholder_of:
            if self.returns[walk] == target:
                return self.parent[walk]
            walk = self.parent[walk]
        if walk > 0 and node == walk:  # below where this thread was resumed: one frame further down
            segment, popped = self.placeholder_of[walk]
            return self.placeholder(segment, popped + 1)
        return None

    def rebase(self, node: int, base: int) -> int:
        """`node`, relative to its segment's placeholder root, on the real stack `base`."""
        path = []
        while node > 0 and node not in self.placeholder_of:
            path.append((self.where[node], self.returns[node]))
            node = self.parent[node]
        if node > 0:
            _, popped = self.placeholder_of[node]
            for _ in range(popped):
                base = max(self.parent[base], 0)
        for where, returns in reversed(path):
            base = self.push(base, where, returns)
        return base

    def resolve(self, segment: int, base: int) -> None:
        for node in self.of_segment.pop(segment, ()):
            self.alias[node] = self.rebase(node, base)

    def path(self, node: int) -> tuple[int, ...] | None:
        """The callers' addresses, outermost first; None when the stack's base stayed unknown."""
        where = []
        while node > 0:
            if node in self.placeholder_of:
                if node not in self.alias:
                    return None
                node = self.alias[node]
                continue
            where.append(self.where[node])
            node = self.parent[node]
        return tuple(reversed(where))


@dataclass
class Counts:
    """Executions of each translated block on each shadow call stack, inside the window."""
    blocks: list[Block]
    frames: _Frames
    executed: collections.Counter  # stack node << 32 | block id -> executions
    partial: collections.Counter   # (stack node << 32 | block id, instructions run) -> cut executions
    unmatched_returns: int = 0     # returns to no address on the shadow stack (stack kept)
    console_bytes: int = 0         # console bytes the log shows written: the whole console's, if all were seen


def read_log(path: Path, kernel: Symbols, window: tuple[int, int | None] = (0, None)) -> Counts:
    """Decodes QEMU's `-d exec,nochain,in_asm,int` log: every block execution, on the shadow
    call stack of the thread that ran it, counted within the console-byte `window`.

    Exact corrections: a block whose execution QEMU logged but did not start ("Stopped
    execution of TB chain") is not counted; one cut short by an exception or by an I/O
    instruction's re-execution ("cpu_io_recompile") counts only the instructions before it.
    Reading stops at the first interrupt after the window, which names the last thread in it."""
    blocks: list[Block] = []
    outs: list[int] = []  # per block: its console bytes
    kinds: list[int] = []  # per block: what its last instruction does to the call stack
    pending: dict[int, list[tuple[int, str]]] = {}  # translated, not yet executed: by guest pc
    by_host: dict[bytes, int] = {}                  # QEMU's block (host code address) -> block id
    frames = _Frames()
    executed: collections.Counter = collections.Counter()
    partial: collections.Counter = collections.Counter()
    unmatched = 0
    written, (first, end) = 0, window
    end = math.inf if end is None else end
    node = 0                       # the current shadow stack
    segment, segment_pc = 0, None  # since the last return from an interrupt: whose stack is unknown
    interrupted: list[tuple[int, int]] = []  # per trap being handled: (interrupted stack, resume address)
    saved: dict[int, tuple[int, int, int]] = {}  # stack slot -> (stack, where, resume) at its last interrupt
    last: int | None = None        # the block just run, its control effect not yet applied
    counted = False                # whether `last` was counted in the window
    translating: list[tuple[int, str]] | None = None

    def effect(block: Block, target: int) -> None:
        nonlocal node, segment, segment_pc, unmatched
        if block.kind == _CALL:
            node = frames.push(node, block.addresses[-1], block.after)
        elif block.kind == _RET:
            popped = frames.pop_to(node, target)
            if popped is None:
                unmatched += 1
            else:
                node = popped
        elif block.kind == _IRET:
            if len(interrupted) > 1:  # the end of a nested trap
                node = interrupted.pop()[0]
            else:
                interrupted.clear()
                segment += 1
                segment_pc = target
                node = frames.placeholder(segment, 0)

    def cut(at: int) -> None:
        """`last` ran only up to the instruction at `at`."""
        nonlocal written, last
        block = blocks[last]
        if at in block.addresses:
            ran = block.addresses.index(at)
            if counted:
                executed[key] -= 1
                partial[key, ran] += 1
            written -= sum(1 for a in block.addresses[ran:] if a in block.console)
        last = None

    key = 0  # the last block's (stack node << 32 | block id): an int hashes faster than a tuple
    with path.open("rb") as log:
        for line in log:
            if translating is not None:
                if line.startswith(b"0x"):
                    address, _, rest = line.partition(b":")
                    translating.append((int(address, 16), rest.decode(errors="replace").rstrip()))
                    continue
                if translating:
                    pending[translating[0][0]] = translating
                translating = None
            head = line[:1]
            if head == b"T":
                # `Trace 0: HOST [CS_BASE/PC/FLAGS/CFLAGS]`, fields of 16 hex digits: sliced, not
                # matched, as this runs for every block executed.
                bracket = line.find(b" [")
                if bracket < 0 or not line.startswith(b"Trace "):
                    continue
                host = line[:bracket]
                if pending:
                    pc = int(line[bracket + 19:bracket + 35], 16)
                    if pc in pending:  # its first execution: this host block is that translation
                        block = len(blocks)
                        parsed = Block.parse(pending.pop(pc))
                        blocks.append(parsed)
                        by_host[host] = block
                        parsed.console = _console_writes(kernel, parsed)
                        outs.append(len(parsed.console))
                        kinds.append(parsed.kind)
                if last is not None and kinds[last] != _OTHER:
                    effect(blocks[last], int(line[bracket + 19:bracket + 35], 16))
                block = by_host.get(host)
                if block is None:
                    last = None
                    continue
                key = node << 32 | block
                counted = first <= written < end
                if counted:
                    executed[key] += 1
                written += outs[block]
                last = block
            elif head == b"I":
                if line.startswith(b"IN:"):
                    translating = []
            elif head == b" ":
                found = _INTERRUPT.match(line)
                if found is None:
                    continue
                vector, software = int(found[1], 16), found[2] == b"1"
                at, stack_pointer = int(found[3], 16), int(found[4], 16)
                resume = at
                if last is not None:
                    block = blocks[last]
                    if software and block.kind == _INT:
                        resume = block.after
                        last = None
                    elif vector < 32 and not software and at in block.addresses:
                        cut(at)  # a fault: its instruction and the rest did not run
                    else:  # between blocks: the last one ran whole
                        if block.kind != _OTHER:
                            effect(block, at)
                        last = None
                if not interrupted:
                    slot = stack_pointer >> _STACK_SLOT_SHIFT
                    if segment_pc is not None:  # now it is known whose stack ran since the last iretq
                        base = saved.get(slot)
                        if base is None:
                            real = 0  # a thread's first run
                        elif base[2] == segment_pc:
                            real = base[0]
                        else:  # resumed elsewhere (diverted): as if called from where it was
                            real = frames.push(base[0], base[1], base[2])
                        frames.resolve(segment, real)
                        node = frames.rebase(node, real)
                        segment_pc = None
                    saved[slot] = (node, at, resume)
                    if written >= end:  # past the window, and every stack in it is known: done
                        break
                interrupted.append((node, resume))
                node = frames.push(node, at, resume)
            elif head == b"S":
                if line.startswith(_STOPPED) and last is not None:  # traced, but not run
                    if counted:
                        executed[key] -= 1
                    written -= outs[last]
                    last = None
            elif head == b"c":
                found = _REWOUND.match(line)
                if found is not None and last is not None:
                    cut(int(found[1], 16))
    if segment_pc is not None:  # the log ended before the next interrupt: unknown, unless only one thread was left there
        candidates = [stack for stack, _, resume in saved.values() if resume == segment_pc]
        if len(candidates) == 1:
            frames.resolve(segment, candidates[0])
    return Counts(blocks, frames, executed, partial, unmatched, written)


def _console_writes(kernel: Symbols, block: Block) -> frozenset:
    """Where a block writes a byte to the serial data port: an `outb` after `movw $0x3f8, %dx`
    in the same block (the compiler inlines the port write into callers of any name), or one
    inside the serial writer itself, which may take the port as a value."""
    writes, port = [], None
    for address, text in zip(block.addresses, block.texts):
        if re.match(r"movw? +\$0x3f8, %dx", text):
            port = 0x3F8
        elif "%dx" in text.partition(",")[2] and not text.startswith("out"):
            port = None
        elif text.startswith("outb") and "%al, %dx" in text:
            name = kernel.name(address) or ""
            if "init" not in name and (port == 0x3F8 or "serial" in name):  # init sets the baud rate
                writes.append(address)
    return frozenset(writes)


@dataclass
class Profile:
    total: int
    stacks: dict[tuple[str, ...], int]  # callers outermost first, then the function that ran: instructions
    unmatched_returns: int = 0
    unknown_base: int = 0               # instructions whose stack below a thread's resume point stayed unknown
    # Each instruction run: its address -> (times run, its text, its function and the calls inlined there)
    instructions: dict[int, tuple[int, str, tuple[str, ...]]] = field(default_factory=dict)

    def self_counts(self) -> list[tuple[str, int]]:
        counts: collections.Counter = collections.Counter()
        for stack, count in self.stacks.items():
            counts[stack[-1]] += count
        return counts.most_common()

    def inclusive_counts(self) -> collections.Counter:
        """Instructions run in each function or anything it called (recursion counted once)."""
        counts: collections.Counter = collections.Counter()
        for stack, count in self.stacks.items():
            for function in set(stack):
                counts[function] += count
        return counts

    @property
    def by_function(self) -> list[tuple[str, int]]:
        return self.self_counts()

    def table(self, top: int = 30) -> str:
        inclusive = self.inclusive_counts()
        lines = [f"{self.total} guest instructions in the window", "",
                 f"{'self':>12} {'%':>6} {'inclusive':>12} {'%':>6}  function"]
        for name, count in self.self_counts()[:top]:
            lines.append(f"{count:>12} {100 * count / self.total:>6.2f} {inclusive[name]:>12} "
                         f"{100 * inclusive[name] / self.total:>6.2f}  {name}")
        lines += ["", f"{'inclusive':>12} {'%':>6}  function (most inclusive)"]
        for name, count in inclusive.most_common(top):
            lines.append(f"{count:>12} {100 * count / self.total:>6.2f}  {name}")
        if self.unknown_base or self.unmatched_returns:
            lines += ["", f"stacks: {self.unknown_base} instructions under '[stack unknown]' (a thread resumed "
                          f"and not interrupted again before the log ended); {self.unmatched_returns} returns "
                          f"to no address on the shadow stack"]
        return "\n".join(lines)

    def tree(self, root: str, per: float = 1, least: float = 0.01) -> str:
        """The calls under `root`, wherever it ran (its stacks merged at its outermost frame):
        each node's instructions with what it called, and its own, divided by `per` (the
        operations the window holds, for figures per operation). Children heaviest first;
        nodes under `least` of the root's instructions are left out. A node's only child is
        printed at the node's depth, so a chain of calls reads as a column."""
        nodes: dict[tuple[str, ...], list[int]] = collections.defaultdict(lambda: [0, 0])  # path -> [inclusive, self]
        for stack, count in self.stacks.items():
            if root not in stack:
                continue
            path = stack[stack.index(root):]
            for depth in range(1, len(path) + 1):
                nodes[path[:depth]][0] += count
            nodes[path][1] += count
        if not nodes:
            raise ProfileError(self._unknown(root))
        floor = least * nodes[(root,)][0]
        children: dict[tuple[str, ...], list[tuple[str, ...]]] = collections.defaultdict(list)
        for path, (inclusive, _) in nodes.items():
            if len(path) > 1 and inclusive >= floor:
                children[path[:-1]].append(path)
        lines = [f"{'inclusive':>10} {'self':>10}  per {per:g}: {root} and what it called"]

        def show(path: tuple[str, ...], indent: int) -> None:
            inclusive, own = nodes[path]
            lines.append(f"{inclusive / per:>10.1f} {own / per:>10.1f}  {' ' * indent}{path[-1]}")
            below = sorted(children[path], key=lambda p: -nodes[p][0])
            for child in below:
                show(child, indent + (2 if len(below) > 1 else 0))

        show((root,), 0)
        return "\n".join(lines)

    def annotate(self, function: str, per: float = 1) -> str:
        """Every instruction of `function` that ran (its own, and those of calls inlined into
        it; or, for an inlined call, the instructions inlined), in address order, with how
        often it ran divided by `per`, its text, and the inlined call it belongs to."""
        rows = sorted((address, times, text, frames) for address, (times, text, frames) in self.instructions.items()
                      if function in frames)
        if not rows:
            if any(function in stack for stack in self.stacks):
                raise ProfileError(f"{function!r} ran none of its own instructions in the window, only calls it made")
            raise ProfileError(self._unknown(function))
        total = sum(times for _, times, _, _ in rows)
        lines = [f"{'count':>10}  per {per:g}: the instructions of {function} ({total / per:.1f}), one by one"]
        for address, times, text, frames in rows:
            inner = frames[-1] if frames[-1] != function else ""
            lines.append(f"{times / per:>10.1f}  {address:#x}  {text:<44} {inner}".rstrip())
        return "\n".join(lines)

    @classmethod
    def load(cls, folder: Path) -> Profile:
        """The profile an earlier run wrote to `folder` (`write`): its stacks and total, exactly,
        from the speedscope file, whose names are whole (the folded file's are not)."""
        path = folder / "profile.speedscope.json"
        try:
            data = json.loads(path.read_text())
            frames = [frame["name"] for frame in data["shared"]["frames"]]
            [recorded] = data["profiles"]
            stacks: collections.Counter = collections.Counter()
            for sample, weight in zip(recorded["samples"], recorded["weights"], strict=True):
                stacks[tuple(frames[i] for i in sample)] += weight
            return cls(total=recorded["endValue"], stacks=dict(stacks))
        except FileNotFoundError:
            raise ProfileError(f"{path}: no profile there (`kwast-bench profile --out {folder}` writes one)") from None
        except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
            raise ProfileError(f"{path}: not a profile kwast-bench wrote ({type(error).__name__}: {error})") from None

    def compare(self, before: Profile, per: float = 1, top: int = 25) -> str:
        """What changed since `before` (the same window run on an earlier kernel, say): the
        totals, then the `top` functions whose own instructions changed most, then those whose
        inclusive ones did; each before and after, divided by `per`."""
        change = self.total - before.total
        lines = [f"per {per:g}: {before.total / per:.1f} instructions before, {self.total / per:.1f} now, "
                 f"{change / per:+.1f} ({100 * change / max(before.total, 1):+.1f} %)"]
        for what, old, new in (("its own instructions", dict(before.self_counts()), dict(self.self_counts())),
                               ("with what it called", before.inclusive_counts(), self.inclusive_counts())):
            changed = sorted((name for name in old.keys() | new.keys() if old.get(name, 0) != new.get(name, 0)),
                             key=lambda name: (-abs(new.get(name, 0) - old.get(name, 0)), name))
            lines += ["", f"{'before':>10} {'now':>10} {'change':>10}  function ({what}), largest changes first"]
            lines += [f"{old.get(name, 0) / per:>10.1f} {new.get(name, 0) / per:>10.1f} "
                      f"{(new.get(name, 0) - old.get(name, 0)) / per:>+10.1f}  {name}" for name in changed[:top]]
            if not changed:
                lines.append("  (no function changed)")
        return "\n".join(lines)

    def _unknown(self, function: str) -> str:
        """Why `function` has no figures: it did not run, and the names that did like it."""
        ran = {f for stack in self.stacks for f in stack}
        like = sorted(name for name in ran if function in name)[:3] or difflib.get_close_matches(function, ran, 3)
        return f"{function!r} did not run in the window" + (f"; did you mean {', '.join(like)}?" if like else "")

    def folded(self) -> str:
        """`caller;...;function count` per stack: what flame-graph tools read."""
        return "".join(";".join(_folded_name(f) for f in stack) + f" {count}\n"
                       for stack, count in sorted(self.stacks.items()))

    def speedscope(self, name: str) -> dict:
        index: dict[str, int] = {}
        samples = [[index.setdefault(function, len(index)) for function in stack] for stack in self.stacks]
        return {"$schema": "https://www.speedscope.app/file-format-schema.json",
                "shared": {"frames": [{"name": function} for function in index]},
                "profiles": [{"type": "sampled", "name": name, "unit": "none", "startValue": 0, "endValue": self.total,
                              "samples": samples, "weights": list(self.stacks.values())}]}


def _folded_name(function: str) -> str:
    # Folded lines are `a;b;c count`: Rust names hold spaces (`<T as U>`) and `;` (`[u8; 4]`).
    return function.replace(" ", "_").replace(";", ",")


_UNKNOWN_BASE = "[stack unknown]"


def attribute(counts: Counts, names: Symbols,
              inlined: Callable[[set[int]], dict[int, tuple[str, ...]]] | None = None) -> Profile:
    """The counts as instructions per stack of function names. `inlined` gives the inlined calls
    at addresses (outermost first), asked once, for the addresses run and called from: each
    becomes a frame above its function's, and the innermost frame gets the instruction."""
    executions = [(key >> 32, key & 0xFFFFFFFF, None, times) for key, times in counts.executed.items() if times]
    executions += [(key >> 32, key & 0xFFFFFFFF, ran, times) for (key, ran), times in counts.partial.items() if times]
    paths = {node: counts.frames.path(node) for node, _, _, _ in executions}
    frames: dict[int, tuple[str, ...]] = {}
    if inlined is not None:
        seen = {address for path in paths.values() if path for address in path}
        seen.update(address for _, block, ran, _ in executions for address in counts.blocks[block].addresses[:ran])
        frames = inlined(seen)
    named: dict[int, tuple[str, ...]] = {}

    def name(address: int) -> tuple[str, ...]:
        """The function at `address` and the calls inlined there."""
        found = named.get(address)
        if found is None:
            found = named[address] = (names.name(address) or f"[unknown {address:#x}]", *frames.get(address, ()))
        return found

    callers: dict[int, tuple[str, ...]] = {}

    def stack(node: int) -> tuple[str, ...]:
        found = callers.get(node)
        if found is None:
            path = paths[node]
            found = callers[node] = (_UNKNOWN_BASE,) if path is None else tuple(f for a in path for f in name(a))
        return found

    runs: dict[tuple[int, int | None], list[tuple[tuple[str, ...], int]]] = {}

    def leaves(block: int, ran: int | None) -> list[tuple[tuple[str, ...], int]]:
        """The frames each of a block's first `ran` instructions is in, with how many in each."""
        found = runs.get((block, ran))
        if found is None:
            found = runs[(block, ran)] = collections.Counter(
                name(address) for address in counts.blocks[block].addresses[:ran]).most_common()
        return found

    stacks: collections.Counter = collections.Counter()
    unknown = 0
    runs_of: collections.Counter = collections.Counter()  # (block, ran) -> times, for the instructions
    for node, block, ran, times in executions:
        prefix = stack(node)
        for leaf, instructions in leaves(block, ran):
            stacks[(*prefix, *leaf)] += times * instructions
            if prefix[:1] == (_UNKNOWN_BASE,):
                unknown += times * instructions
        runs_of[(block, ran)] += times
    instructions: dict[int, list] = {}
    for (block, ran), times in runs_of.items():
        translated = counts.blocks[block]
        for address, text in zip(translated.addresses[:ran], translated.texts[:ran]):
            entry = instructions.setdefault(address, [0, text, name(address)])
            entry[0] += times
    return Profile(sum(stacks.values()), dict(stacks), counts.unmatched_returns, unknown,
                   {address: tuple(entry) for address, entry in instructions.items()})


def flame_graph(profile: Profile, title: str, width: int = 1200) -> str:
    """The stacks as an SVG flame graph: each function a box as wide as its inclusive count,
    its callees stacked on it; hovering shows the counts."""
    tree: dict = {}
    for stack, count in profile.stacks.items():
        level = tree
        for function in stack:
            entry = level.setdefault(function, [0, {}])
            entry[0] += count
            level = entry[1]
    row, top = 17, 40
    boxes: list[tuple[float, int, float, str, int]] = []  # x, depth, width, name, count

    def lay(level: dict, x: float, depth: int) -> None:
        for function, (count, children) in sorted(level.items()):
            box = count * (width - 20) / max(profile.total, 1)
            if box >= 0.3:
                boxes.append((x, depth, box, function, count))
                lay(children, x, depth + 1)
            x += box

    lay(tree, 10, 0)
    depth = max((b[1] for b in boxes), default=0) + 1
    height = top + depth * row + 10
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="#fdfdf6"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15">{_xml(title)}</text>',
           f'<text x="10" y="34" fill="#555">{profile.total} guest instructions; box width = instructions '
           f'in the function and its callees; hover for counts</text>']
    for x, level, box, function, count in boxes:
        y = height - 10 - (level + 1) * row
        out.append(f'<g><title>{_xml(function)}: {count} instructions ({100 * count / profile.total:.2f} %)</title>'
                   f'<rect x="{x:.1f}" y="{y}" width="{box:.1f}" height="{row - 1}" rx="2" fill="{_colour(function)}"/>')
        chars = int((box - 4) / 6.6)
        if chars >= 3:
            label = function if len(function) <= chars else function[:chars - 2] + ".."
            out.append(f'<text x="{x + 2:.1f}" y="{y + 12}">{_xml(label)}</text>')
        out.append("</g>")
    out.append("</svg>\n")
    return "\n".join(out)


def _colour(function: str) -> str:
    """Warm colours for the kernel (paler for its inlined calls), cool for wasm servers
    (`server!function`), stable per name."""
    shade = zlib.crc32(function.encode()) % 60
    if function.endswith(INLINED):
        return f"rgb({225 + shade // 3},{185 + shade},{90 + shade})"
    if "!" in function:
        return f"rgb({80 + shade},{150 + shade},{200 + shade // 2})"
    return f"rgb({205 + shade // 2},{90 + shade * 2},{40 + shade // 2})"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write(profile: Profile, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"profile.txt": profile.table(top=len(profile.stacks)) + "\n", "profile.folded": profile.folded(),
             "profile.speedscope.json": json.dumps(profile.speedscope(name)), "profile.svg": flame_graph(profile, name)}
    for file, text in files.items():
        (folder / file).write_text(text)
    return [folder / file for file in files]
