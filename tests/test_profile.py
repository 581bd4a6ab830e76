"""The exact profiler: its log decoder on a written log (no QEMU), and one profiled boot."""

from __future__ import annotations

import subprocess
import sys

from conftest import SETTINGS
from workbench import profile

# Two blocks: the kernel's console write (one `out` per byte) and a loop body.
LOG = b"""----------------
IN: write
0x0000000000001000:  ee                       outb     %al, %dx
0x0000000000001001:  c3                       retq

Trace 0: 0x7f0000000100 [0000000000000000/0000000000001000/00000040/ff020200] write
----------------
IN: work
0x0000000000002000:  48 ff c0                 incq     %rax
0x0000000000002003:  48 ff c0                 incq     %rax
0x0000000000002006:  eb f8                    jmp      0x2000

Trace 0: 0x7f0000000200 [0000000000000000/0000000000002000/00000040/ff020200] work
Trace 0: 0x7f0000000200 [0000000000000000/0000000000002000/00000040/ff020200] work
Trace 0: 0x7f0000000100 [0000000000000000/0000000000001000/00000040/ff020200] write
Trace 0: 0x7f0000000200 [0000000000000000/0000000000002000/00000040/ff020200] work
Trace 0: 0x7f0000000100 [0000000000000000/0000000000001000/00000040/ff020200] write
Trace 0: 0x7f0000000200 [0000000000000000/0000000000002000/00000040/ff020200] work
"""

NAMES = profile.Symbols.of([(0x1000, 0x1002, "kwast_kernel::arch::x86_64::serial::write"), (0x2000, 0x2008, "work")])


def test_every_execution_counts_each_instruction_of_its_block(tmp_path):
    log = tmp_path / "exec.log"
    log.write_bytes(LOG)
    result = profile.attribute(profile.read_log(log, NAMES), NAMES)
    assert result.by_function == [("work", 12), ("kwast_kernel::arch::x86_64::serial::write", 6)]
    assert result.total == 18 and result.folded() == "work 12\nkwast_kernel::arch::x86_64::serial::write 6\n"


def test_the_window_is_counted_in_console_bytes(tmp_path):
    log = tmp_path / "exec.log"
    log.write_bytes(LOG)
    # From after the first console byte to the second: one `work` block and one write.
    result = profile.attribute(profile.read_log(log, NAMES, (1, 2)), NAMES)
    assert result.by_function == [("work", 6), ("kwast_kernel::arch::x86_64::serial::write", 2)]
    # Console lines to byte offsets: each line ends in \r\n.
    assert profile.window_bytes("a\nbb\nccc\n", "^bb$", "^ccc$") == (7, 12)


def test_a_profiled_boot_names_kernel_and_wasm_functions(tmp_path):
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "profile", "--from", r"^\[hello\] hello from hello$",
                           "--to", r"^\[hello\] realtime", "--out", str(tmp_path)],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    functions = dict(line.rsplit(" ", 1) for line in (tmp_path / "profile.folded").read_text().splitlines())
    assert any(name.startswith("hello!") for name in functions), "the hello server's own functions"
    assert any(name.startswith("kwast_kernel::") for name in functions)
    assert sum(map(int, functions.values())) == int(done.stdout.split()[0])
