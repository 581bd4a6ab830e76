"""servers/include/kwast.h spells for C what the kernel declares (kernel/src/wasm/abi/records.rs,
ipc::error::Error): check every number and every record field of the header against the
kernel's DWARF, so neither side can drift.

clang reads the header: `-dM` lists its macros, and a probe that stores each macro's value and
one variable of each record is compiled with `-g`; the workbench's DWARF reader then reads the
probe like the kernel. The probe is built for x86_64 (an ELF); a second compile for wasm32, the
servers' target, asserts the header means the same there.

Names: KWAST_<PATH> is the field <path> of the kernel's KWAST_ABI (nested fields joined by `_`),
an array field is a macro with one argument (`grant[i]` is KWAST_GRANT(i)), KWAST_E<NAME> an
enumerator of ipc::error::Error and KWAST_<NAME> one of an enum field of a record. Record
`kwast_x` is the kernel's `KwastX`.
"""

import json
import re
import subprocess
from dataclasses import dataclass

import pytest

from conftest import SETTINGS
from workbench import dwarf

HEADER = SETTINGS.servers_dir / "include/kwast.h"

# Macros that are not numbers, so have nothing to agree with.
NOT_NUMBERS = {
    "KWAST_H": "the include guard",
    "KWAST_IMPORT": "marks a function as an import of the `kwast` module",
}

PROBE_PREFIX = "kwast_probe_"


def clang(*args: str, source: str = "") -> str:
    done = subprocess.run(["clang", "-ffreestanding", f"-I{HEADER.parent}", "-x", "c", *args, "-"],
                          input=source, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"clang {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def header_macros() -> dict[str, int | None]:
    """KWAST_ macros that should be numbers: name -> None (object-like) or parameter count."""
    macros = {}
    for name, parameters in re.findall(r"^#define (KWAST_\w+)(\([^)]*\))?", clang("-E", "-dM", source=f'#include "{HEADER.name}"\n'), re.M):
        if name not in NOT_NUMBERS:
            macros[name] = len(parameters.strip("()").split(",")) if parameters else None
    return macros


@pytest.fixture(scope="module")
def records() -> dict[str, str]:
    """The records kwast.h defines: name -> how C spells its type (`struct x` or a typedef)."""
    dump = clang("--target=wasm32-wasi", "-fsyntax-only", "-Xclang", "-ast-dump=json",
                 "-Xclang", "-ast-dump-filter=kwast", source=f'#include "{HEADER.name}"\n')
    found, decoder, at = {}, json.JSONDecoder(), dump.find("{")
    while at != -1:
        decl, end = decoder.raw_decode(dump, at)
        at = dump.find("{", end)
        if decl["kind"] == "RecordDecl" and decl.get("completeDefinition"):
            found[decl["name"]] = f"{decl['tagUsed']} {decl['name']}"
        elif decl["kind"] == "TypedefDecl" and decl["type"]["qualType"].startswith(("struct ", "union ")):
            found[decl["name"]] = decl["name"]
    return found


@dataclass
class Declared:
    numbers: dict  # kwast.h name -> value; a list for a macro with an argument, KWAST_GRANT(i)
    records: dict  # C name -> dwarf.Struct, or why there is none


def flatten(value, path: str, into: dict) -> dict:
    """KWAST_ABI's decoded fields by their kwast.h names."""
    if isinstance(value, dict):
        for name, field in value.items():
            flatten(field, f"{path}_{name.upper()}", into)
    else:
        into[path] = value
    return into


@pytest.fixture(scope="module")
def kernel(kernel_image, records) -> Declared:
    abi = dwarf.variable(SETTINGS.kernel_elf, "KWAST_ABI")
    numbers = flatten(dwarf.decode(abi.type, abi.initial), "KWAST", {})
    numbers.update((f"KWAST_E{name.upper()}", value) for name, value in kernel_image.enum("ipc::error::Error").items())
    layouts = {}
    for name in records:
        try:
            layouts[name] = dwarf.struct_layout(SETTINGS.kernel_elf, name.title().replace("_", ""))
        except dwarf.LayoutError as error:
            layouts[name] = str(error)
            continue
        for member in layouts[name].members:
            if isinstance(member.type, dwarf.Enum):
                numbers.update((f"KWAST_{enumerator.upper()}", value) for value, enumerator in member.type.names)
    return Declared(numbers, layouts)


@pytest.fixture(scope="module")
def header(kernel, records, tmp_path_factory) -> Declared:
    """Read from the probe's DWARF. A macro with an argument is evaluated for each index of the
    kernel's array of that name; one the probe cannot evaluate is None."""
    lines, evaluated, macros = [f'#include "{HEADER.name}"'], [], header_macros()
    for name, parameters in macros.items():
        if parameters is None:
            lines.append(f"const __typeof__({name}) {PROBE_PREFIX}{name} = {name};")
        elif parameters == 1 and isinstance(kernel.numbers.get(name), list):
            values = ", ".join(f"{name}({i})" for i in range(len(kernel.numbers[name])))
            lines.append(f"const __typeof__({name}(0)) {PROBE_PREFIX}{name}[] = {{{values}}};")
        else:
            evaluated.append(name)
    lines += [f"{spelling} {PROBE_PREFIX}{name};" for name, spelling in records.items()]
    probe = tmp_path_factory.mktemp("abi") / "probe.o"
    clang("-g", "-c", "-o", str(probe), source="\n".join(lines) + "\n")

    def number(name):
        if name in evaluated:
            return None
        variable = dwarf.variable(probe, PROBE_PREFIX + name)
        return dwarf.decode(variable.type, variable.initial)

    return Declared({name: number(name) for name in macros},
                    {name: dwarf.variable(probe, PROBE_PREFIX + name).type for name in records})


def by_element(numbers: dict) -> dict:
    """Arrays as one entry per element, named as C calls them: KWAST_GRANT(0)."""
    flat = {}
    for name, value in numbers.items():
        if isinstance(value, list):
            flat.update((f"{name}({i})", element) for i, element in enumerate(value))
        else:
            flat[name] = value
    return flat


def test_every_number_matches_the_kernel(kernel, header):
    problems = [f"{name}: kwast.h declares it, the kernel does not" for name in sorted(header.numbers.keys() - kernel.numbers.keys())]
    problems += [f"{name}: the kernel declares it ({kernel.numbers[name]}), kwast.h does not"
                 for name in sorted(kernel.numbers.keys() - header.numbers.keys())]
    theirs, ours = by_element(kernel.numbers), by_element(header.numbers)
    problems += [f"{name}: kwast.h {ours[name]}, kernel {theirs[name]}"
                 for name in sorted(ours.keys() & theirs.keys()) if ours[name] != theirs[name]]
    assert not problems, "kwast.h and the kernel disagree:\n" + "\n".join(problems)
    assert {"KWAST_MAX_MESSAGE", "KWAST_RIGHT_CALL", "KWAST_GRANT(0)", "KWAST_MESSAGE", "KWAST_EKILLED"} <= ours.keys()


def layout_problems(where: str, header: dwarf.Type, kernel: dwarf.Type) -> list[str]:
    problems = [f"{where}: size {header.size} in kwast.h, {kernel.size} in the kernel"] if header.size != kernel.size else []
    return problems + shape_problems(where, header, kernel)


def shape_problems(where: str, header: dwarf.Type, kernel: dwarf.Type) -> list[str]:
    if isinstance(header, dwarf.Array) and isinstance(kernel, dwarf.Array):
        if header.count != kernel.count:
            return [f"{where}: {header.count} elements in kwast.h, {kernel.count} in the kernel"]
        return layout_problems(f"{where}[]", header.element, kernel.element)
    if isinstance(header, dwarf.Struct) and isinstance(kernel, dwarf.Struct):
        problems = []
        theirs = {member.name: member for member in kernel.members}
        for member in header.members:
            field, kernel_member = f"{where}.{member.name}", theirs.get(member.name)
            if kernel_member is None:
                problems.append(f"{field}: in kwast.h only")
                continue
            if member.offset != kernel_member.offset:
                problems.append(f"{field}: offset {member.offset} in kwast.h, {kernel_member.offset} in the kernel")
            problems += layout_problems(field, member.type, kernel_member.type)
        problems += [f"{where}.{name}: in the kernel only" for name in theirs.keys() - {m.name for m in header.members}]
        return problems
    if isinstance(header, (dwarf.Array, dwarf.Struct)) or isinstance(kernel, (dwarf.Array, dwarf.Struct)):
        return [f"{where}: {type(header).__name__.lower()} in kwast.h, {type(kernel).__name__.lower()} in the kernel"]
    return []


def test_every_record_matches_the_kernel(kernel, header):
    assert {"kwast_message", "kwast_limits"} <= header.records.keys()
    problems = []
    for name, layout in header.records.items():
        theirs = kernel.records[name]
        problems += [f"{name}: {theirs}"] if isinstance(theirs, str) else layout_problems(name, layout, theirs)
    assert not problems, "kwast.h and the kernel lay records out differently:\n" + "\n".join(problems)


def test_wasm32_reads_the_header_as_the_probe_did(header, records):
    """The probe was built for x86_64; servers are wasm32: same numbers, same offsets there."""
    asserts = [f'#include "{HEADER.name}"']
    for name, value in by_element(header.numbers).items():
        if value is not None:
            literal = f"{value}u" if value >= 0 else f"({value})"
            asserts.append(f'_Static_assert(({name}) == {literal}, "{name} is {value} on x86_64");')
    for name, layout in header.records.items():
        spelling = records[name]
        asserts.append(f'_Static_assert(sizeof({spelling}) == {layout.size}, "sizeof {name}");')
        for member in layout.members:
            field = f"(({spelling} *)0)->{member.name}"
            asserts.append(f'_Static_assert(__builtin_offsetof({spelling}, {member.name}) == {member.offset}'
                           f' && sizeof({field}) == {member.type.size}, "{name}.{member.name} at {member.offset}, {member.type.size} bytes");')
    clang("--target=wasm32-wasi", "-fsyntax-only", source="\n".join(asserts) + "\n")
