"""What the display shows: a screendump (PPM) as a picture, the VGA text buffer the guest
writes, and whether the picture shows that text.

The check needs no font. In text mode each character cell is drawn from one glyph in two
colours: a cell holding a character has pixels of both, a blank cell is one colour, cells
holding the same character in the same colours look alike and different characters differ.
A black picture, an old one or one of other text fails it; only one character drawn as
another that is nowhere else on the screen would pass, which it would take the font to see.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TEXT_BUFFER = 0xB8000      # colour text mode: a (character, attribute) byte pair per cell
COLUMNS, ROWS = 80, 25
TEXT_BUFFER_SIZE = COLUMNS * ROWS * 2
# Glyphs of one colour from edge to edge: NUL, space and 0xFF are all background, the full
# block all foreground.
_FLAT = {0x00, 0x20, 0xFF, 0xDB}
_PPM = re.compile(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s")
# Differences a failure names; the rest are counted.
_SHOWN = 3


@dataclass(frozen=True)
class Picture:
    width: int
    height: int
    pixels: bytes  # RGB, three bytes a pixel, row by row

    @classmethod
    def from_ppm(cls, data: bytes) -> Picture:
        found = _PPM.match(data)
        if found is None or found[3] != b"255":
            raise ValueError(f"not an 8-bit PPM image (it starts {data[:16]!r})")
        width, height = int(found[1]), int(found[2])
        pixels = data[found.end():found.end() + width * height * 3]
        if len(pixels) != width * height * 3:
            raise ValueError(f"the PPM image is cut short: {len(pixels)} of {width * height * 3} pixel bytes")
        return cls(width, height, pixels)

    def rows(self, x: int, y: int, width: int, height: int) -> list[bytes]:
        """The pixel rows of one rectangle."""
        return [self.pixels[((y + r) * self.width + x) * 3:((y + r) * self.width + x + width) * 3]
                for r in range(height)]


@dataclass(frozen=True)
class TextScreen:
    cells: bytes  # TEXT_BUFFER_SIZE bytes from TEXT_BUFFER

    def has_glyph(self, index: int) -> bool:
        """Whether cell `index` is drawn in two colours: a character that is not flat, in a
        foreground colour other than its background."""
        char, attribute = self.cells[2 * index], self.cells[2 * index + 1]
        return char not in _FLAT and attribute & 0x0F != (attribute >> 4) & 0x07

    @property
    def text(self) -> str:
        """The characters, one line per row, without trailing blanks."""
        chars = bytes(self.cells[0::2]).replace(b"\0", b" ").decode("cp437")
        lines = [chars[r * COLUMNS:(r + 1) * COLUMNS].rstrip() for r in range(ROWS)]
        return "\n".join(lines).rstrip("\n")


def _char(code: int) -> str:
    return bytes([code]).decode("cp437")


def mismatch(picture: Picture, screen: TextScreen) -> str | None:
    """Why `picture` does not show `screen`'s text, or None when it does."""
    if picture.width % COLUMNS or picture.height % ROWS:
        return f"a {picture.width}x{picture.height} picture is not a {COLUMNS}x{ROWS} text screen"
    glyphs = sum(screen.has_glyph(i) for i in range(COLUMNS * ROWS))
    if not glyphs:
        return "the text buffer is blank: no text to look for"
    width, height = picture.width // COLUMNS, picture.height // ROWS
    problems: list[str] = []
    looks: dict[bytes, set[bytes]] = {}  # (character, attribute) -> how its cells look
    cursor_seen = False
    for index in range(COLUMNS * ROWS):
        row, column = divmod(index, COLUMNS)
        rows = picture.rows(column * width, row * height, width, height)
        background = rows[0][:3]
        plain = [r == background * width for r in rows]
        where = f"row {row + 1} column {column + 1}"
        if screen.has_glyph(index):
            if all(plain):
                problems.append(f"{where}: {_char(screen.cells[2 * index])!r} is not drawn")
            else:
                looks.setdefault(screen.cells[2 * index:2 * index + 2], set()).add(b"".join(rows))
        elif not all(plain):
            # The text cursor: one blank cell may show an underline in its lowest quarter.
            if not cursor_seen and all(plain[:height * 3 // 4]):
                cursor_seen = True
            else:
                problems.append(f"{where}: blank in the text buffer, drawn on in the picture")
    owners: dict[bytes, bytes] = {}
    for cell, drawn in looks.items():
        if len(drawn) > 1:
            problems.append(f"{_char(cell[0])!r} is drawn in {len(drawn)} different ways")
        for look in drawn:
            other = owners.setdefault(look, cell)
            if other != cell:
                problems.append(f"{_char(other[0])!r} and {_char(cell[0])!r} look the same")
    if not problems:
        return None
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    return (f"the picture does not show the text buffer's {glyphs} characters: "
            + "; ".join(problems[:_SHOWN]) + more)
