"""Layouts of `#[repr(C)]` types read from an ELF's DWARF, and a decoder from bytes to plain objects;
and the inlined calls at a code address (`inlined_frames`), for the profiler.

Nothing here knows a Kwast type: members are found by name, offsets and sizes come from the
DWARF, so adding a field to a kernel struct changes nothing on the host. Walking DWARF with
pyelftools is slow, so one walk per ELF version indexes every named variable, struct and enum
(kept in a file beside the ELF); a lookup then parses only what it needs. This is the
workbench's one DWARF reader.
"""

from __future__ import annotations

import heapq
import json
import os
import struct
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Union

from elftools.dwarf.ranges import BaseAddressEntry
from elftools.elf.elffile import ELFFile


class LayoutError(Exception):
    pass


# --- the layout model -----------------------------------------------------------------

@dataclass(frozen=True)
class Base:
    name: str
    size: int
    kind: str  # "uint", "int", "float", "bool", "char"


@dataclass(frozen=True)
class Enum:
    name: str
    size: int
    signed: bool
    names: tuple[tuple[int, str], ...]  # (value, enumerator name)


@dataclass(frozen=True)
class Pointer:
    size: int


@dataclass(frozen=True)
class Opaque:
    """A type the decoder does not take apart (unions, data-carrying Rust enums): raw bytes."""
    name: str
    size: int


@dataclass(frozen=True)
class Array:
    element: "Type"
    count: int

    @property
    def size(self) -> int:
        return self.element.size * self.count


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    type: "Type"


@dataclass(frozen=True)
class Struct:
    name: str
    size: int
    members: tuple[Member, ...]

    def member(self, name: str) -> Member:
        for member in self.members:
            if member.name == name:
                return member
        raise LayoutError(f"struct {self.name} has no field {name!r} (fields: {', '.join(m.name for m in self.members)})")

    def offset_of(self, path: str) -> int:
        """Byte offset of a dotted field path, e.g. `sequence` or `cpus.ticks` (first element)."""
        offset, here = 0, self
        for part in path.split("."):
            while isinstance(here, Array):
                here = here.element
            if not isinstance(here, Struct):
                raise LayoutError(f"{path}: {part!r} is not inside a struct")
            member = here.member(part)
            offset += member.offset
            here = member.type
        return offset


Type = Union[Base, Enum, Pointer, Opaque, Array, Struct]


@dataclass(frozen=True)
class Variable:
    """A global variable: where it is, its type, and the bytes the ELF initialises it with."""
    name: str
    address: int
    type: Type
    initial: bytes


# --- reading DWARF --------------------------------------------------------------------

_ENCODINGS = {2: "bool", 4: "float", 5: "int", 6: "int", 7: "uint", 8: "uint", 0x10: "char"}
_DW_OP_PLUS_UCONST = 0x23


def _name(die) -> str:
    attr = die.attributes.get("DW_AT_name")
    return attr.value.decode(errors="replace") if attr else ""


def _uleb(data: list[int]) -> int:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return value


def _member_offset(die) -> int:
    attr = die.attributes.get("DW_AT_data_member_location")
    if attr is None:
        return 0  # union members and some single-field structs omit it
    if isinstance(attr.value, int):
        return attr.value
    if attr.value and attr.value[0] == _DW_OP_PLUS_UCONST:  # DWARF 2 style location expression
        return _uleb(attr.value[1:])
    raise LayoutError(f"member {_name(die)!r}: unsupported location expression {attr.value}")


class _TypeReader:
    def __init__(self) -> None:
        self._memo: dict[int, Type] = {}

    def read(self, die) -> Type:
        if die.offset not in self._memo:
            self._memo[die.offset] = self._read(die)
        return self._memo[die.offset]

    def _target(self, die):
        if "DW_AT_type" not in die.attributes:
            raise LayoutError(f"{die.tag} {_name(die)!r} has no type")
        return die.get_DIE_from_attribute("DW_AT_type")

    def _read(self, die) -> Type:
        tag = die.tag
        size = die.attributes["DW_AT_byte_size"].value if "DW_AT_byte_size" in die.attributes else None
        if tag in ("DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_atomic_type"):
            return self.read(self._target(die))
        if tag == "DW_TAG_base_type":
            encoding = die.attributes["DW_AT_encoding"].value
            return Base(_name(die), size, _ENCODINGS.get(encoding, "uint"))
        if tag in ("DW_TAG_pointer_type", "DW_TAG_reference_type"):
            return Pointer(size or 8)
        if tag == "DW_TAG_enumeration_type":
            underlying = self.read(self._target(die)) if "DW_AT_type" in die.attributes else None
            signed = isinstance(underlying, Base) and underlying.kind == "int"
            names = tuple((child.attributes["DW_AT_const_value"].value, _name(child))
                          for child in die.iter_children() if child.tag == "DW_TAG_enumerator")
            return Enum(_name(die), size, signed, names)
        if tag == "DW_TAG_array_type":
            element = self.read(self._target(die))
            counts = [self._count(child) for child in die.iter_children() if child.tag == "DW_TAG_subrange_type"]
            for count in reversed(counts):  # int a[2][3] is an array of 2 arrays of 3
                element = Array(element, count)
            return element
        if tag in ("DW_TAG_structure_type", "DW_TAG_class_type"):
            if "DW_AT_declaration" in die.attributes:
                raise LayoutError(f"struct {_name(die)} is only declared in this unit")
            children = list(die.iter_children())
            if any(child.tag == "DW_TAG_variant_part" for child in children):
                return Opaque(_name(die), size)
            members = []
            for child in children:
                if child.tag != "DW_TAG_member" or "DW_AT_external" in child.attributes:
                    continue  # skip static members
                if "DW_AT_bit_size" in child.attributes:
                    raise LayoutError(f"struct {_name(die)}: bit-field {_name(child)!r} is not supported")
                members.append(Member(_name(child), _member_offset(child), self.read(self._target(child))))
            return Struct(_name(die), size, tuple(members))
        if tag == "DW_TAG_union_type":
            return Opaque(_name(die), size)
        raise LayoutError(f"unsupported DWARF type {tag} {_name(die)!r}")

    @staticmethod
    def _count(subrange) -> int:
        attrs = subrange.attributes
        if "DW_AT_count" in attrs:
            return attrs["DW_AT_count"].value
        if "DW_AT_upper_bound" in attrs:
            lower = attrs["DW_AT_lower_bound"].value if "DW_AT_lower_bound" in attrs else 0
            return attrs["DW_AT_upper_bound"].value - lower + 1
        return 0  # a flexible array member


# --- finding things: one walk per ELF version -----------------------------------------

_INDEX_FORMAT = 2  # bumped when the index file's shape changes: an old file is then rebuilt
_INDEXED = {"DW_TAG_variable": "variable", "DW_TAG_structure_type": "struct", "DW_TAG_enumeration_type": "enum"}


def _identity(elf_path: Path | str) -> tuple:
    path = Path(elf_path)
    if not path.is_file():
        raise LayoutError(f"{path}: no such ELF file (run `kwast-bench build`)")
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _index(identity: tuple) -> dict[str, list[int]]:
    """Every named variable, struct and enum definition in the ELF, as "kind a::b::Name" →
    [unit offset, DIE offset] of its first definition (Rust repeats a type in each unit using
    it). Walking the DWARF takes seconds (wasmtime's generics are
    instantiated in the kernel crate); so the index is also kept beside the ELF, for the next
    process, and a lookup then parses one DIE and what it refers to."""
    path = Path(identity[0])
    cache_file = path.with_name(path.name + ".kwast-dwarf-index.json")
    cached = _load_beside(cache_file, _INDEX_FORMAT, identity)
    if cached is not None:
        return cached["index"]
    index: dict[str, list[int]] = {}
    with path.open("rb") as file:
        elf = ELFFile(file)
        if not elf.has_dwarf_info():
            raise LayoutError(f"{path}: no DWARF debug info (build with debug = true)")
        for unit in elf.get_dwarf_info().iter_CUs():
            for die in unit.iter_DIEs():
                kind = _INDEXED.get(die.tag)
                if kind and "DW_AT_name" in die.attributes and "DW_AT_declaration" not in die.attributes \
                        and (kind != "variable" or "DW_AT_type" in die.attributes):
                    index.setdefault(f"{kind} {_qualified(die)}", [unit.cu_offset, die.offset])
    _save_beside(cache_file, {"format": _INDEX_FORMAT, "identity": list(identity), "index": index})
    return index


def _load_beside(cache_file: Path, format_: int, identity: tuple) -> dict | None:
    """What a walk of the ELF `identity` names left in `cache_file`, if it is there, of this
    format and of that ELF."""
    try:
        cached = json.loads(cache_file.read_text())
        if cached["format"] == format_ and cached["identity"] == list(identity):
            return cached
    except (OSError, ValueError, KeyError):
        pass
    return None


def _save_beside(cache_file: Path, document: dict) -> None:
    """Kept for the next process: written whole, then renamed, so a reader never sees half."""
    temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
    try:
        temporary.write_text(json.dumps(document))
        temporary.replace(cache_file)
    except OSError:
        pass  # a read-only directory: the next process walks again


def _qualified(die) -> str:
    """`die`'s name with the namespaces around it (Rust modules; none in C): crate::module::Name."""
    names = [_name(die)]
    parent = die.get_parent()
    while parent is not None and parent.tag == "DW_TAG_namespace":
        names.append(_name(parent))
        parent = parent.get_parent()
    return "::".join(reversed(names))


def _find(elf, identity: tuple, kind: str, path: str) -> list:
    """The DIEs of `kind` whose qualified name is `path` or ends with `::path`."""
    suffix = f"::{path}"
    dwarf = elf.get_dwarf_info()
    return [dwarf.get_CU_at(unit).get_DIE_from_refaddr(offset)
            for key, (unit, offset) in _index(identity).items()
            if key.startswith(f"{kind} ") and (key[len(kind) + 1:] == path or key.endswith(suffix))]


def variable(elf_path: Path | str, name: str) -> Variable:
    """The global `name` in the ELF: address from .symtab, type from DWARF, initial bytes from
    its section."""
    return _variable(_identity(elf_path), name)


@lru_cache(maxsize=32)
def _variable(identity: tuple, name: str) -> Variable:
    path = identity[0]
    with open(path, "rb") as file:
        elf = ELFFile(file)
        symtab = elf.get_section_by_name(".symtab")
        symbols = symtab.get_symbol_by_name(name) if symtab is not None else None
        if not symbols:
            raise LayoutError(f"{path}: no symbol {name!r} (is it #[no_mangle]? was the ELF stripped?)")
        symbol = symbols[0]
        found = _find(elf, identity, "variable", name)
        if not found:
            raise LayoutError(f"{path}: no DWARF for variable {name!r}")
        type_ = _TypeReader().read(found[0].get_DIE_from_attribute("DW_AT_type"))
        return Variable(name, symbol["st_value"], type_, _initial_bytes(elf, symbol, type_.size))


def _initial_bytes(elf, symbol, size: int) -> bytes:
    """What the ELF declares the variable holds before the program runs (e.g. a magic)."""
    index = symbol["st_shndx"]
    if not isinstance(index, int):
        raise LayoutError(f"symbol {symbol.name} is in no section ({index})")
    section = elf.get_section(index)
    if section["sh_type"] == "SHT_NOBITS":
        return bytes(size)  # .bss: zeros
    # Executables: st_value is an address; relocatable objects: an offset in the section (sh_addr 0).
    start = symbol["st_value"] - section["sh_addr"]
    return section.data()[start:start + size]


def struct_layout(elf_path: Path | str, name: str) -> Struct:
    """The struct type named `name` (or `module::Name`; the first definition), for types
    without a variable."""
    return _typed(_identity(elf_path), "struct", name)


def enum(elf_path: Path | str, name: str) -> Enum:
    """The enum named `name`, or a path such as "ipc::error::Error" naming the modules around it."""
    return _typed(_identity(elf_path), "enum", name)


@lru_cache(maxsize=64)
def _typed(identity: tuple, kind: str, name: str):
    with open(identity[0], "rb") as file:
        found = _find(ELFFile(file), identity, kind, name)
        if not found:
            raise LayoutError(f"{identity[0]}: no {kind} {name!r} in the DWARF")
        return _TypeReader().read(found[0])


# --- decoding -------------------------------------------------------------------------

class Record(dict):
    """A decoded struct: a dict whose fields are also attributes (`cpu.ticks`)."""

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def is_text_field(name: str) -> bool:
    """[u8; N] fields decoded as NUL-terminated UTF-8 text rather than bytes: names and reasons."""
    return name in ("name", "reason") or name.endswith(("_name", "_reason"))


_INT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}
Decoder = Callable[[object, int], object]


def _scalar(type_: Type) -> Type | None:
    """The scalar a type boils down to: wrappers like AtomicU64{v: UnsafeCell<u64>{value}} are one u64."""
    while isinstance(type_, Struct) and len(type_.members) == 1 and type_.members[0].offset == 0 \
            and type_.members[0].type.size == type_.size:
        type_ = type_.members[0].type
    return type_ if isinstance(type_, (Base, Enum, Pointer)) else None


def _code(scalar: Type) -> str:
    if isinstance(scalar, Base) and scalar.kind == "float":
        return {4: "f", 8: "d"}[scalar.size]
    if isinstance(scalar, Base) and scalar.kind == "bool":
        return "?"
    code = _INT_CODES.get(scalar.size)
    if code is None:
        raise LayoutError(f"no decoding for a {scalar.size}-byte scalar")
    signed = (isinstance(scalar, Base) and scalar.kind == "int") or (isinstance(scalar, Enum) and scalar.signed)
    return code.lower() if signed else code


def _enum_post(enum: Enum) -> Callable[[int], object]:
    names = dict(enum.names)
    return lambda value: names.get(value, value)  # an unknown value stays a number


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


class _FlatStruct:
    """A struct of scalars, byte arrays and structs of those, decoded with one precompiled
    `struct.Struct`; a nested struct becomes a nested Record."""

    def __init__(self, st: Struct, fields: list[tuple[tuple[str, ...], int, str, Callable | None]]):
        fmt, position = "<", 0
        paths, self.post = [], []
        for index, (path, offset, code, post) in enumerate(sorted(fields, key=lambda f: f[1])):
            if offset < position:
                raise LayoutError(f"struct {st.name}: overlapping field {'.'.join(path)!r}")
            fmt += "x" * (offset - position) + code
            position = offset + struct.calcsize("<" + code)
            paths.append(path)
            if post is not None:
                self.post.append((index, post))
        fmt += "x" * (st.size - position)
        self.struct = struct.Struct(fmt)
        self.names = [path[0] for path in paths]
        # Nested structs: (top-level name, [(sub-path, value index)]), rebuilt after unpacking.
        self.nested: dict[str, list[tuple[tuple[str, ...], int]]] = {}
        for index, path in enumerate(paths):
            if len(path) > 1:
                self.nested.setdefault(path[0], []).append((path[1:], index))

    def _record(self, values: tuple) -> Record:
        if self.post:
            values = list(values)
            for index, post in self.post:
                values[index] = post(values[index])
        record = Record(zip(self.names, values))
        for name, parts in self.nested.items():
            record[name] = _nest(parts, values)
        return record

    def __call__(self, buffer, offset: int) -> Record:
        return self._record(self.struct.unpack_from(buffer, offset))

    def many(self, buffer, offset: int, count: int) -> list[Record]:
        view = memoryview(buffer)[offset:offset + count * self.struct.size]
        return [self._record(values) for values in self.struct.iter_unpack(view)]


def _nest(parts: list[tuple[tuple[str, ...], int]], values) -> Record:
    record = Record()
    for path, index in parts:
        inner = record
        for name in path[:-1]:
            inner = inner.setdefault(name, Record())
        inner[path[-1]] = values[index]
    return record


def _flat_fields(st: Struct, prefix: tuple[str, ...] = (), base: int = 0) -> list | None:
    fields = []
    for member in st.members:
        path, offset = prefix + (member.name,), base + member.offset
        scalar = _scalar(member.type)
        if scalar is not None:
            post = _enum_post(scalar) if isinstance(scalar, Enum) else None
            fields.append((path, offset, _code(scalar), post))
        elif isinstance(member.type, Array) and isinstance(_scalar(member.type.element), Base) \
                and member.type.element.size == 1 and _scalar(member.type.element).kind in ("uint", "int"):
            post = _text if is_text_field(member.name) else None
            fields.append((path, offset, f"{member.type.count}s", post))
        elif isinstance(member.type, Struct) and (inner := _flat_fields(member.type, path, offset)) is not None:
            fields += inner
        else:
            return None
    return fields


def _flat(st: Struct) -> _FlatStruct | None:
    fields = _flat_fields(st)
    return None if fields is None else _FlatStruct(st, fields)


def decoder(type_: Type) -> Decoder:
    """A function (buffer, offset) -> plain Python value for `type_`: Record for structs,
    list for arrays, enumerator name for enums, int/float/bool for scalars."""
    scalar = _scalar(type_)
    if scalar is not None:
        unpack = struct.Struct("<" + _code(scalar)).unpack_from
        if isinstance(scalar, Enum):
            post = _enum_post(scalar)
            return lambda buffer, offset: post(unpack(buffer, offset)[0])
        return lambda buffer, offset: unpack(buffer, offset)[0]
    if isinstance(type_, Struct):
        flat = _flat(type_)
        if flat is not None:
            return flat
        parts = [(m.name, m.offset, decoder(m.type)) for m in type_.members]
        return lambda buffer, offset: Record((name, decode(buffer, offset + at)) for name, at, decode in parts)
    if isinstance(type_, Array):
        return _array_decoder(type_)
    if isinstance(type_, Opaque):
        return lambda buffer, offset: bytes(buffer[offset:offset + type_.size])
    raise LayoutError(f"cannot decode {type_}")


def _array_decoder(array: Array) -> Decoder:
    element, count, stride = array.element, array.count, array.element.size
    scalar = _scalar(element)
    if isinstance(scalar, Base) and scalar.size == element.size:
        many = struct.Struct(f"<{count}{_code(scalar)}")
        return lambda buffer, offset: list(many.unpack_from(buffer, offset))
    decode = decoder(element)
    if isinstance(decode, _FlatStruct) and decode.struct.size == stride:
        return lambda buffer, offset: decode.many(buffer, offset, count)
    return lambda buffer, offset: [decode(buffer, offset + i * stride) for i in range(count)]


def decode(type_: Type, data: bytes, offset: int = 0) -> object:
    if len(data) - offset < type_.size:
        raise LayoutError(f"{len(data) - offset} bytes given, {type_.size} needed to decode {getattr(type_, 'name', type_)}")
    return decoder(type_)(data, offset)


# --- inlined calls: where the compiler inlined what --------------------------------------

_INLINED_FORMAT = 2  # bumped when the cache file's shape changes: an old file is then rebuilt


def inlined_frames(elf_path: Path | str, addresses: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """For each of `addresses` inside code the compiler inlined, the inlined functions it lies
    in, outermost first, by linkage name (mangled; a plain name where there is none), from the
    DWARF's `DW_TAG_inlined_subroutine` ranges. Addresses outside any are left out, as is
    everything when the ELF has no DWARF.

    Only the units holding an address are walked, but each whole (the DIEs carry no sibling
    links to skip by): seconds per MB of `.debug_info`. So what a walk found is kept in a file
    beside the ELF, for that version of it as the DWARF index is (`_identity`), and grows as
    profiles reach further."""
    identity, addresses = _identity(elf_path), sorted(set(addresses))
    path = Path(identity[0])
    cache_file = path.with_name(path.name + ".kwast-inlined.json")
    cache = _load_beside(cache_file, _INLINED_FORMAT, identity) or \
        {"format": _INLINED_FORMAT, "identity": list(identity), "names": [], "units": {}}
    with path.open("rb") as file:
        elf = ELFFile(file)
        if not elf.has_dwarf_info():
            return {}
        dwarf = elf.get_dwarf_info()
        aranges = dwarf.get_aranges()
        if aranges is None:
            raise LayoutError(f"{path}: no .debug_aranges to find an address's unit by")
        units = {aranges.cu_offset_at_addr(address) for address in addresses} - {None}
        missing = sorted(unit for unit in units if str(unit) not in cache["units"])
        if missing:
            names = {name: index for index, name in enumerate(cache["names"])}
            for unit in missing:
                cache["units"][str(unit)] = _inlined_ranges(dwarf, dwarf.get_CU_at(unit), names)
            cache["names"] = list(names)
            _save_beside(cache_file, cache)
    return _containing(sorted(entry for unit in units for entry in cache["units"][str(unit)]),
                       addresses, cache["names"])


def _inlined_ranges(dwarf, unit, names: dict[str, int]) -> list[list[int]]:
    """[low, high, depth, name] per address range of each inlined call in `unit`; depth counts
    the inlined calls around it, name indexes `names` (extended as new ones are met)."""
    found: list[list[int]] = []
    origins: dict[int, int] = {}
    top = unit.get_top_DIE()
    base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0

    def name(die) -> int:
        origin = die.get_DIE_from_attribute("DW_AT_abstract_origin")
        if origin.offset not in origins:
            named = origin
            if "DW_AT_specification" in origin.attributes:  # a method: its name is on its declaration
                named = origin.get_DIE_from_attribute("DW_AT_specification")
            attribute = named.attributes.get("DW_AT_linkage_name") or named.attributes.get("DW_AT_name")
            if attribute is None:
                raise LayoutError(f"DIE {origin.offset:#x}: an inlined function without a name")
            origins[origin.offset] = names.setdefault(attribute.value.decode(errors="replace"), len(names))
        return origins[origin.offset]

    def walk(die, depth: int) -> None:
        for child in die.iter_children():
            if child.tag == "DW_TAG_inlined_subroutine":
                index = name(child)
                # Address 0: the linker's mark for code it discarded.
                found.extend([low, high, depth, index] for low, high in _pc_ranges(dwarf, unit, base, child)
                             if 0 < low < high)
                walk(child, depth + 1)
            elif child.has_children:
                walk(child, depth)

    walk(top, 0)
    return found


def _pc_ranges(dwarf, unit, base: int, die) -> list[tuple[int, int]]:
    attributes = die.attributes
    if "DW_AT_ranges" in attributes:
        if attributes["DW_AT_ranges"].form != "DW_FORM_sec_offset":
            raise LayoutError(f"DIE {die.offset:#x}: DW_AT_ranges in form {attributes['DW_AT_ranges'].form}, "
                              f"not read here (DWARF 5 range list indices)")
        ranges = []
        for entry in dwarf.range_lists().get_range_list_at_offset(attributes["DW_AT_ranges"].value, cu=unit):
            if isinstance(entry, BaseAddressEntry):
                base = entry.base_address
            else:
                offset = 0 if entry.is_absolute else base
                ranges.append((offset + entry.begin_offset, offset + entry.end_offset))
        return ranges
    if "DW_AT_low_pc" in attributes:
        low, high = attributes["DW_AT_low_pc"].value, attributes["DW_AT_high_pc"]
        return [(low, high.value if high.form == "DW_FORM_addr" else low + high.value)]  # else a length
    return []


def _containing(entries: list[list[int]], addresses: list[int], names: list[str]) -> dict[int, tuple[str, ...]]:
    """One sweep up the address space: the entries open at each address, outermost first."""
    found: dict[int, tuple[str, ...]] = {}
    open_: list[tuple[int, int, int]] = []  # (high, depth, name), a heap by where it ends
    next_ = 0
    for address in addresses:
        while next_ < len(entries) and entries[next_][0] <= address:
            low, high, depth, name = entries[next_]
            heapq.heappush(open_, (high, depth, name))
            next_ += 1
        while open_ and open_[0][0] <= address:
            heapq.heappop(open_)
        if open_:
            found[address] = tuple(names[name] for _, _, name in sorted(open_, key=lambda entry: entry[1]))
    return found


def main(argv: list[str]) -> int:
    """`python -m workbench.dwarf ELF`: index the ELF now (the build's last step), so that the first
    state read, test or TUI pane after a build does not wait for the walk."""
    try:
        index = _index(_identity(argv[0]))
    except LayoutError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{argv[0]}: {len(index)} DWARF definitions indexed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
