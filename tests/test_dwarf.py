"""The DWARF layout reader on real compiler output: a tiny C struct shaped like the kernel's
debug-state block, compiled with clang twice — as is, and with fields inserted — must decode to
the same named values both times. Nothing in this test knows an offset."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import SETTINGS
from workbench import dwarf

SOURCE = r"""
#include <stdint.h>
enum __attribute__((packed)) RunState { Free, Ready, Running, Blocked };   /* one byte, like #[repr(u8)] */
enum Kind { None, Switch, IpcCall };
struct UnsafeCell { uint64_t value; };
struct AtomicU64 { struct UnsafeCell v; };
struct Cpu { uint32_t online; EXTRA_CPU uint64_t ticks; };
struct Thread { uint32_t id; char name[24]; EXTRA_THREAD enum RunState state; uint8_t cpu; };
struct Event { uint64_t tsc; enum Kind kind; };
struct DebugState {
    uint64_t magic;
    EXTRA_TOP
    uint32_t layout_version;
    struct AtomicU64 sequence;
    struct Cpu cpus[3];
    struct Thread threads[2];
    uint16_t grid[2][3];
    struct Event events[4];
};
struct DebugState KWAST_DEBUG_STATE = {
    .magic = 0x4742445453415742ull, .layout_version = 7, .sequence = {{42}},
    .cpus = {{.online = 1, .ticks = 1000}, {.online = 0, .ticks = 5}},
    .threads = {{.id = 9, .name = "init", .state = Running, .cpu = 1}, {.id = 10, .name = "idle", .state = Blocked}},
    .grid = {{1, 2, 3}, {4, 5, 6}},
    .events = {{.tsc = 77, .kind = IpcCall}},
};
"""

EXTRA = {"EXTRA_TOP": "uint8_t added_top[5];", "EXTRA_CPU": "uint16_t added_cpu;", "EXTRA_THREAD": "uint64_t added_thread;"}


def compile_state(tmp_path: Path, with_extra: bool) -> Path:
    defines = [f"-D{key}={value if with_extra else ''}" for key, value in EXTRA.items()]
    source = tmp_path / "state.c"
    source.write_text(SOURCE)
    out = tmp_path / ("extra.o" if with_extra else "plain.o")
    subprocess.run(["clang", "-g", "-c", *defines, str(source), "-o", str(out)], check=True)
    return out


@pytest.mark.parametrize("with_extra", [False, True])
def test_decoder_finds_named_fields(tmp_path, with_extra):
    variable = dwarf.variable(compile_state(tmp_path, with_extra), "KWAST_DEBUG_STATE")
    state = dwarf.decode(variable.type, variable.initial)
    assert state.magic == 0x4742445453415742
    assert state.layout_version == 7
    assert state.sequence == 42  # AtomicU64 { v: UnsafeCell { value } } is one number
    assert [c.online for c in state.cpus] == [1, 0, 0]
    assert [c.ticks for c in state.cpus] == [1000, 5, 0]
    assert [(t.id, t.name, t.state, t.cpu) for t in state.threads] == [(9, "init", "Running", 1), (10, "idle", "Blocked", 0)]
    assert state.grid == [[1, 2, 3], [4, 5, 6]]
    assert (state.events[0].tsc, state.events[0].kind) == (77, "IpcCall")
    assert state.events[1].kind == "None"
    assert ("added_top" in state) == with_extra


def test_inserted_fields_really_moved_the_others(tmp_path):
    plain = dwarf.variable(compile_state(tmp_path, False), "KWAST_DEBUG_STATE").type
    extra = dwarf.variable(compile_state(tmp_path, True), "KWAST_DEBUG_STATE").type
    for path in ("layout_version", "sequence", "cpus.ticks", "threads.state"):
        assert extra.offset_of(path) > plain.offset_of(path), path
    assert extra.size > plain.size


def test_one_byte_enum_and_array_bounds(tmp_path):
    layout = dwarf.variable(compile_state(tmp_path, False), "KWAST_DEBUG_STATE").type
    state_type = layout.member("threads").type.element.member("state").type
    assert isinstance(state_type, dwarf.Enum) and state_type.size == 1
    assert dict(state_type.names)[3] == "Blocked"
    assert layout.member("cpus").type.count == 3
    with pytest.raises(dwarf.LayoutError, match="has no field 'nope'"):
        layout.member("nope")


def test_kernel_block_layout_comes_from_the_elf():
    variable = dwarf.variable(SETTINGS.kernel_elf, "KWAST_DEBUG_STATE")
    initial = dwarf.decode(variable.type, variable.initial)
    assert initial.magic.to_bytes(8, "little") == b"KWASTDBG"  # the kernel's declared MAGIC, read from .data
    assert initial.layout_version >= 1
    assert len(initial.cpus) >= 1 and "ticks" in initial.cpus[0]
    assert all(t.id == 0 for t in initial.threads)  # free rows, as the kernel marks them


def test_missing_symbol_is_a_clear_error(tmp_path):
    with pytest.raises(dwarf.LayoutError, match="no symbol 'NOPE'"):
        dwarf.variable(compile_state(tmp_path, False), "NOPE")
