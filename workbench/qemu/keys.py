"""The US keyboard: text and key names to the QEMU qcodes a PS/2 keyboard would send for them.
The one table the TUI's typing line and scenario `send_keys` steps share."""

from __future__ import annotations

import re
import string

_PLAIN = {c: c for c in string.ascii_lowercase + string.digits}
_PLAIN.update({" ": "spc", "\n": "ret", "\t": "tab", "-": "minus", "=": "equal", "[": "bracket_left",
               "]": "bracket_right", ";": "semicolon", "'": "apostrophe", "`": "grave_accent",
               "\\": "backslash", ",": "comma", ".": "dot", "/": "slash"})
_SHIFTED = {c.upper(): c for c in string.ascii_lowercase}
_SHIFTED.update(zip("!@#$%^&*()", "1234567890"))
_SHIFTED.update({"_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right", ":": "semicolon",
                 '"': "apostrophe", "~": "grave_accent", "|": "backslash", "<": "comma", ">": "dot", "?": "slash"})
# Short names people write for modifiers; anything else is passed to QEMU as a qcode.
_ALIASES = {"ctrl": "ctrl", "control": "ctrl", "alt": "alt", "shift": "shift", "enter": "ret",
            "return": "ret", "escape": "esc", "space": "spc", "backspace": "backspace"}


# A named key inside a typed line: `<f12>`, `<ctrl-c>`, `<esc>`.
_NAMED_IN_LINE = re.compile(r"<([a-z0-9_]+(?:-[a-z0-9_]+)*)>", re.I)


class KeyNameError(ValueError):
    pass


def for_text(text: str) -> list[list[str]]:
    """One combination of keys held together per character."""
    presses = []
    for char in text:
        if char in _PLAIN:
            presses.append([_PLAIN[char]])
        elif char in _SHIFTED:
            presses.append(["shift", _SHIFTED[char]])
        else:
            raise KeyNameError(f"cannot type {char!r} on a US keyboard")
    return presses


def named(name: str) -> list[str]:
    """`ctrl-c` -> [ctrl, c]; `ret` -> [ret]; `f1` -> [f1]."""
    parts = name.lower().split("-") if name != "-" else ["-"]
    return [_ALIASES.get(p, _PLAIN.get(p, p)) for p in parts]


def for_line(line: str) -> list[tuple[str, list[str]]]:
    """A line as the TUI's typing line takes it, text with `<name>` for a named key (`a<f12>b`):
    (text, named keys) pieces to send in order. KeyNameError, before any is sent, for a
    character the keyboard cannot type."""
    pieces, at = [], 0
    for found in _NAMED_IN_LINE.finditer(line):
        pieces.append((line[at:found.start()], [found[1]]))
        at = found.end()
    pieces.append((line[at:], []))
    for text, _ in pieces:
        for_text(text)
    return [(text, keys) for text, keys in pieces if text or keys]
