"""Text to QMP `send-key` key presses (QEMU's qcodes, US layout), as a PS/2 keyboard would type it."""

from __future__ import annotations

_NAMED = {
    " ": "spc", "\n": "ret", "\t": "tab", "-": "minus", "=": "equal", "[": "bracket_left",
    "]": "bracket_right", ";": "semicolon", "'": "apostrophe", "`": "grave_accent",
    "\\": "backslash", ",": "comma", ".": "dot", "/": "slash",
}
# Characters typed with shift held, by the unshifted key.
_SHIFTED = dict(zip('!@#$%^&*()_+{}:"~|<>?', "1234567890-=[];'`\\,./"))


def qcodes(char: str) -> list[str]:
    """The keys held together to type `char`; ValueError for what a US keyboard cannot type."""
    if char.isascii() and (char.islower() or char.isdigit()):
        return [char]
    if char.isascii() and char.isupper():
        return ["shift", char.lower()]
    if char in _NAMED:
        return [_NAMED[char]]
    if char in _SHIFTED:
        return ["shift", *qcodes(_SHIFTED[char])]
    raise ValueError(f"{char!r} has no key on a US keyboard")


def presses(text: str) -> list[list[dict]]:
    """One `send-key` `keys` argument per character of `text`."""
    return [[{"type": "qcode", "data": code} for code in qcodes(char)] for char in text]
