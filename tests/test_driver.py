"""The machine driver without QEMU: QMP commands sent only by it, the keyboard table, verbs as
the QMP commands they send, and the check that a screendump shows the VGA text buffer, on
synthetic pictures."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

import workbench
from workbench.qemu import Monitor, QemuError, keys, screen


def test_no_qmp_command_is_sent_outside_the_driver():
    # QMP command names start with a letter; GDB/MI commands, also sent by `command`, with '-';
    # `gdb.execute` runs a GDB command in GDB's Python (gdb_reverse.py).
    root = Path(workbench.__file__).parent
    call = re.compile(r"""(?<!gdb)\.(command|execute)\(\s*["'][a-z]""")
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for path in sorted(root.rglob("*.py")) if path.relative_to(root).parts[0] != "qemu"
             for number, line in enumerate(path.read_text().splitlines(), 1) if call.search(line)]
    assert found == [], "QMP commands belong in workbench/qemu/monitor.py as verbs"


# --- the keyboard ------------------------------------------------------------------------


def test_text_and_key_names_become_qcodes():
    assert keys.for_text("aB1 !\n") == [["a"], ["shift", "b"], ["1"], ["spc"], ["shift", "1"], ["ret"]]
    assert keys.named("ctrl-c") == ["ctrl", "c"] and keys.named("Enter") == ["ret"] and keys.named("f1") == ["f1"]
    with pytest.raises(keys.KeyNameError, match="cannot type 'é' on a US keyboard"):
        keys.for_text("é")


def test_a_typed_line_names_keys_in_angle_brackets():
    assert keys.for_line("<f12>\n") == [("", ["f12"]), ("\n", [])]
    assert keys.for_line("ls<ctrl-c>a<b\n") == [("ls", ["ctrl-c"]), ("a<b\n", [])]  # `<b` names nothing
    with pytest.raises(keys.KeyNameError, match="cannot type 'é'"):
        keys.for_line("<f12>é")


# --- verbs -------------------------------------------------------------------------------


class Recorder(Monitor):
    """A monitor that records commands and answers from a script: name -> answers in turn, each
    a function of the commands sent so far."""

    def __init__(self, answers: dict[str, list] | None = None, lacking: str | None = None):
        self.sent: list[tuple[str, dict | None]] = []
        self.answers = answers or {}
        self.lacking = lacking
        self.socket_dir = None

    async def command(self, name, arguments=None, timeout=10):
        self.sent.append((name, arguments))
        queue = self.answers.get(name)
        return queue.pop(0)(self.sent) if queue else {}

    def _lacks(self, feature):
        return f"no {feature}" if feature == self.lacking else None


def test_send_keys_presses_each_combination_with_one_hold_time():
    monitor = Recorder()
    assert asyncio.run(monitor.send_keys("A", ["ctrl-c"])) == 2
    assert monitor.sent == [
        ("send-key", {"keys": [{"type": "qcode", "data": "shift"}, {"type": "qcode", "data": "a"}], "hold-time": 20}),
        ("send-key", {"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "c"}], "hold-time": 20})]


def test_a_verb_the_machine_lacks_fails_before_any_command():
    monitor = Recorder(lacking="keyboard")
    with pytest.raises(QemuError, match="no keyboard"):
        asyncio.run(monitor.send_keys("a"))
    assert monitor.sent == []


def test_a_snapshot_job_is_waited_for_and_its_error_raised():
    def job(status: str, **more):
        return lambda sent: [{"id": sent[0][1]["job-id"], "status": status, **more}]

    monitor = Recorder({"query-jobs": [job("running"), job("concluded", error="no space")]})
    with pytest.raises(QemuError, match="snapshot-save t: no space"):
        asyncio.run(monitor.save_snapshot("t"))
    assert [name for name, _ in monitor.sent] == ["snapshot-save", "query-jobs", "query-jobs", "job-dismiss"]
    assert monitor.sent[0][1]["tag"] == "t" and monitor.sent[-1][1] == {"id": monitor.sent[0][1]["job-id"]}


# --- the screen --------------------------------------------------------------------------

CELL_W, CELL_H = 9, 16
WIDTH, HEIGHT = screen.COLUMNS * CELL_W, screen.ROWS * CELL_H
GREY, BLACK = b"\xa8\xa8\xa8", b"\x00\x00\x00"


def text_buffer(lines: list[str], attribute: int = 0x07) -> screen.TextScreen:
    cells = bytearray()
    for row in range(screen.ROWS):
        line = (lines[row] if row < len(lines) else "").ljust(screen.COLUMNS)
        for char in line:
            cells += bytes([ord(char), attribute])
    return screen.TextScreen(bytes(cells))


def ppm(pixels: bytearray) -> bytes:
    return b"P6\n%d %d\n255\n" % (WIDTH, HEIGHT) + bytes(pixels)


def draw(text: screen.TextScreen, cursor: tuple[int, int] | None = None) -> bytearray:
    """A picture of `text` in a made-up font: a character's code as bits across its top rows."""
    pixels = bytearray(BLACK * (WIDTH * HEIGHT))

    def ink(x: int, y: int) -> None:
        pixels[(y * WIDTH + x) * 3:(y * WIDTH + x) * 3 + 3] = GREY

    for index in range(screen.COLUMNS * screen.ROWS):
        row, column = divmod(index, screen.COLUMNS)
        code = text.cells[2 * index]
        if text.has_glyph(index):
            for y in range(8):
                for x in range(8):
                    if code >> x & 1:
                        ink(column * CELL_W + x, row * CELL_H + y)
    if cursor is not None:
        row, column = cursor
        for y in (13, 14):
            for x in range(CELL_W):
                ink(column * CELL_W + x, row * CELL_H + y)
    return pixels


FIRMWARE = text_buffer(["SeaBIOS (version 1.16.2-debian-1.16.2-1)", "Booting from ROM..."])


def picture(pixels: bytearray) -> screen.Picture:
    return screen.Picture.from_ppm(ppm(pixels))


def test_the_picture_of_the_text_passes_with_the_cursor_under_it():
    assert FIRMWARE.text == "SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM..."
    assert screen.mismatch(picture(draw(FIRMWARE, cursor=(2, 0))), FIRMWARE) is None


def test_a_black_picture_fails():
    black = picture(bytearray(BLACK * (WIDTH * HEIGHT)))
    problem = screen.mismatch(black, FIRMWARE)
    assert problem is not None
    assert problem.startswith("the picture does not show the text buffer's 55 characters: row 1 column 1: 'S' is not drawn")
    assert "(and 52 more)" in problem


def test_a_picture_of_other_text_fails():
    other = draw(text_buffer(["SeaBIOS (version 1.16.1-debian-1.16.1-1)", "Booting from ROM..."]))
    assert "'1' and '2' look the same" in screen.mismatch(picture(other), FIRMWARE)
    shifted = draw(text_buffer([" SeaBIOS (version 1.16.2-debian-1.16.2-1)", "Booting from ROM..."]))
    assert "blank in the text buffer, drawn on in the picture" in screen.mismatch(picture(shifted), FIRMWARE)
    swapped = draw(text_buffer(["SeaBIOS (version 1.16.2-debian-1.16.2-1)", "Booting frmo ROM..."]))
    assert "drawn in 2 different ways" in screen.mismatch(picture(swapped), FIRMWARE)


def test_only_one_cursor_and_only_a_text_screen():
    two_cursors = draw(FIRMWARE, cursor=(2, 0))
    for y in (13, 14):
        for x in range(CELL_W):
            at = ((5 * CELL_H + y) * WIDTH + 3 * CELL_W + x) * 3
            two_cursors[at:at + 3] = GREY
    assert "row 6 column 4: blank in the text buffer" in screen.mismatch(picture(two_cursors), FIRMWARE)
    assert screen.mismatch(picture(draw(FIRMWARE)), text_buffer([])) == "the text buffer is blank: no text to look for"
    small = screen.Picture(640, 480, BLACK * (640 * 480))
    assert screen.mismatch(small, FIRMWARE) == "a 640x480 picture is not a 80x25 text screen"


def test_a_picture_that_is_not_ppm_is_refused():
    with pytest.raises(ValueError, match="not an 8-bit PPM image"):
        screen.Picture.from_ppm(b"\x89PNG\r\n")
    with pytest.raises(ValueError, match="cut short"):
        screen.Picture.from_ppm(ppm(bytearray(10)))
