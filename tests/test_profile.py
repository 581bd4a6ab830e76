"""The exact profiler: its log decoder on written logs (no QEMU), and profiled boots."""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SETTINGS
from workbench import dwarf, profile

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
    assert result.total == 18 and result.folded() == "kwast_kernel::arch::x86_64::serial::write 6\nwork 12\n"


def test_the_window_is_counted_in_console_bytes(tmp_path):
    log = tmp_path / "exec.log"
    log.write_bytes(LOG)
    # From after the first console byte to the second: one `work` block and one write.
    result = profile.attribute(profile.read_log(log, NAMES, (1, 2)), NAMES)
    assert result.by_function == [("work", 6), ("kwast_kernel::arch::x86_64::serial::write", 2)]
    # Console lines to byte offsets: each line ends in \r\n.
    assert profile.window_bytes("a\nbb\nccc\n", "^bb$", "^ccc$") == (7, 12)


FIXTURES = Path(__file__).parent / "fixtures"
TWO_THREADS = profile.Symbols.of([(0x1000, 0x1100, "main_a"), (0x2000, 0x2100, "main_b"), (0x3000, 0x3100, "work"),
                                  (0x4000, 0x4100, "trap"), (0x5000, 0x5100, "switch")])


def test_shadow_stacks_follow_calls_interrupts_and_threads():
    """tests/fixtures/profile-two-threads.log, in QEMU's formats: thread A (stack slot 1) calls
    `work`, which traps with `int 0x81`; the handler resumes thread B (slot 2, first run), whose
    stack is known only at the timer interrupt that ends its run; then A again, returning below
    where it was resumed, and faulting mid-block. Also a long instruction's wrapped bytes, an
    I/O instruction's rewind and a block traced but not run."""
    counts = profile.read_log(FIXTURES / "profile-two-threads.log", TWO_THREADS)
    result = profile.attribute(counts, TWO_THREADS)
    assert result.folded() == (
        "main_a 3\n"                  # nop, call; after the return, one instruction before the fault
        "main_a;trap 2\n"             # the fault's handler, on the stack it interrupted
        "main_a;work 3\n"             # incq, int; and the return, run after A was resumed
        "main_a;work;trap 4\n"        # int 0x81's handler: stub, call, iretq
        "main_a;work;trap;switch 2\n"
        "main_b 4\n"                  # call; incq before the rewound out, the out alone, jmp
        "main_b;trap 4\n"
        "main_b;trap;switch 2\n"
        "main_b;work 2\n")            # movabsq (its bytes on two lines) and ret
    inclusive = result.inclusive_counts()
    assert inclusive["main_a"] == 14 and inclusive["trap"] == 14 and inclusive["switch"] == 4
    assert result.total == 26 and result.unknown_base == 0 and result.unmatched_returns == 0
    speedscope = result.speedscope("two threads")
    frames = [frame["name"] for frame in speedscope["shared"]["frames"]]
    [sampled] = speedscope["profiles"]
    assert sorted(";".join(frames[i] for i in stack) + f" {weight}\n"
                  for stack, weight in zip(sampled["samples"], sampled["weights"])) == result.folded().splitlines(True)
    svg = profile.flame_graph(result, "two threads")
    assert svg.count("<rect ") == 1 + 9 and "main_a;" not in svg and ">main_b<" in svg


def test_inlined_calls_are_frames_above_their_function():
    """The fixture's `work` with calls inlined into it: `helper` over its `int` and `ret` (so
    the trap's handler stands on `helper`), and `outer` with `inner` inside it over B's copy.
    Counts only move up into the inlined frames: without them the profile is the one above."""
    inlined = {0x3003: ("helper [inlined]",), 0x3005: ("helper [inlined]",),
               0x3010: ("outer [inlined]",), 0x301a: ("outer [inlined]", "inner [inlined]")}
    asked = set()

    def frames(addresses):
        asked.update(addresses)
        return {address: inlined[address] for address in addresses if address in inlined}

    counts = profile.read_log(FIXTURES / "profile-two-threads.log", TWO_THREADS)
    result = profile.attribute(counts, TWO_THREADS, frames)
    assert result.folded() == (
        "main_a 3\n"
        "main_a;trap 2\n"
        "main_a;work 1\n"                               # incq
        "main_a;work;helper_[inlined] 2\n"              # int, and the return
        "main_a;work;helper_[inlined];trap 4\n"
        "main_a;work;helper_[inlined];trap;switch 2\n"
        "main_b 4\n"
        "main_b;trap 4\n"
        "main_b;trap;switch 2\n"
        "main_b;work;outer_[inlined] 1\n"               # movabsq
        "main_b;work;outer_[inlined];inner_[inlined] 1\n")  # ret
    assert result.total == 26 and dict(result.self_counts())["outer [inlined]"] == 1
    inclusive = result.inclusive_counts()
    assert inclusive["work"] == 11 and inclusive["helper [inlined]"] == 8 and inclusive["outer [inlined]"] == 2
    plain = profile.attribute(counts, TWO_THREADS)
    merged = collections.Counter()
    for stack, count in result.stacks.items():
        merged[tuple(f for f in stack if not f.endswith(profile.INLINED))] += count
    assert merged == plain.stacks
    # Asked once, for what ran and where calls and interrupts came from; not for the
    # instruction after the fault, which never ran.
    assert {0x1001, 0x3003, 0x301a, 0x1006, 0x1009} <= asked and 0x100C not in asked
    svg = profile.flame_graph(result, "inlined")
    assert ">helper [inlined]<" in svg


# `ipc::call`, with `Endpoint::call` inlined into it (the kernel is one codegen unit).
KERNEL_CALL = "kwast_kernel::ipc::call"


def test_the_kernels_inlined_calls_come_from_its_dwarf():
    """Every address of the kernel's `ipc::call`, against llvm-symbolizer's reading of the
    same DWARF (another implementation): the same inlined calls, outermost first. Among them
    `debug::record::ipc_holding`, `#[inline(always)]`, with the always-inlined
    `update_interrupts_off` inside it."""
    [(start, end)] = [(s, e) for s, e, name in profile.kernel_symbols(SETTINGS.kernel_elf) if name == KERNEL_CALL]
    found = dwarf.inlined_frames(SETTINGS.kernel_elf, range(start, end))
    symbolized = subprocess.run(["llvm-symbolizer", "--obj", str(SETTINGS.kernel_elf), "--inlining",
                                 "--functions=linkage", "--no-demangle", *map(hex, range(start, end))],
                                capture_output=True, text=True, check=True).stdout.strip().split("\n\n")
    assert len(symbolized) == end - start
    for address, frames in zip(range(start, end), symbolized):
        functions = frames.split("\n")[::2]  # function, file:line:column; innermost first
        assert found.get(address, ()) == tuple(reversed(functions))[1:], hex(address)
    named = profile.inlined_frames(SETTINGS.kernel_elf, range(start, end))
    chains = [chain for chain in named.values() if "kwast_kernel::debug::record::ipc_holding [inlined]" in chain]
    assert chains, f"no address of {KERNEL_CALL} is in record::ipc_holding"
    for chain in chains:
        inner = chain[chain.index("kwast_kernel::debug::record::ipc_holding [inlined]") + 1:]
        assert inner[:1] in [(), ("kwast_kernel::debug::state::update_interrupts_off [inlined]",)]
    assert any(len(chain) > chain.index("kwast_kernel::debug::record::ipc_holding [inlined]") + 1 for chain in chains)


def test_what_the_dwarf_walk_found_is_kept_per_elf(tmp_path, monkeypatch):
    """A walk is seconds; a second profile of the same ELF reads the file it left, keyed by
    the ELF's version (path, inode, size, mtime, as the DWARF index): a changed ELF is walked again."""
    elf = tmp_path / "kwast-kernel"
    shutil.copy(SETTINGS.kernel_elf, elf)
    [(start, end)] = [(s, e) for s, e, name in profile.kernel_symbols(elf) if name == KERNEL_CALL]
    first = dwarf.inlined_frames(elf, range(start, end))
    walk = dwarf._inlined_ranges

    def no_walk(*args):
        raise AssertionError("walked the DWARF again")

    monkeypatch.setattr(dwarf, "_inlined_ranges", no_walk)
    assert dwarf.inlined_frames(elf, range(start, end)) == first
    with elf.open("r+b") as file:  # a byte of the ELF header's padding: another version of the ELF
        file.seek(15)
        file.write(b"\x01")
    walked = []
    monkeypatch.setattr(dwarf, "_inlined_ranges", lambda *args: walked.append(1) or walk(*args))
    assert dwarf.inlined_frames(elf, range(start, end)) == first and walked == [1]


def test_a_thread_not_interrupted_again_has_an_unknown_base(tmp_path):
    lines = (FIXTURES / "profile-two-threads.log").read_text().splitlines()
    # Cut the log before the timer interrupt that names thread B.
    cut = next(i for i, line in enumerate(lines) if "v=20" in line)
    log = tmp_path / "exec.log"
    log.write_text("\n".join(lines[:cut]) + "\n")
    counts = profile.read_log(log, TWO_THREADS)
    result = profile.attribute(counts, TWO_THREADS)
    assert result.stacks[("[stack unknown]", "main_b")] == 4 and result.unknown_base == 6


def test_a_kernel_routine_of_known_length_is_attributed_exactly(tmp_path):
    """ktest `profile_known_work` (kernel/src/ktest_profile.rs) runs 2n + 2 instructions in
    `kwast_profile_known_work` and prints the time stamp counter's delta around it: under
    `-icount shift=0` the instructions run meanwhile, interrupts included."""
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "profile", "--config", "configs/pingpong.yaml",
                           "--append", "test=profile_known_work", "--from", "profile_known_work: start",
                           "--to", "iterations in", "--out", str(tmp_path)],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    iterations, delta = map(int, re.search(r"(\d+) iterations in (\d+) instructions",
                                           (tmp_path / "serial.log").read_text()).groups())
    stacks = [line.rsplit(" ", 1) for line in (tmp_path / "profile.folded").read_text().splitlines()]
    own = [int(count) for stack, count in stacks if stack.endswith(";kwast_profile_known_work")]
    assert own == [2 * iterations + 2]
    assert all("kmain;kwast_kernel::ktest::run" in stack for stack, _ in stacks)
    # The window runs from the start line's end to the delta line's: the delta, plus printing it.
    total = sum(int(count) for _, count in stacks)
    assert delta <= total <= delta * 1.01
    assert (tmp_path / "profile.svg").read_text().startswith("<svg")


def test_a_profiled_boot_names_kernel_and_wasm_functions(tmp_path):
    # An earlier profile to compare against, in which one function ran that this boot has not.
    profile.write(profile.Profile(total=10**9, stacks={("kwast_kernel::sched::thread_start", "gone"): 10**9}),
                  tmp_path / "before", "before")
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "profile", "--from", r"^\[hello\] hello from hello$",
                           "--to", r"^\[hello\] realtime", "--out", str(tmp_path), "--tree", "kwast_kernel::sched::thread_start",
                           "--annotate", "hello!printf_core", "--against", str(tmp_path / "before")],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    stacks = [line.rsplit(" ", 1) for line in (tmp_path / "profile.folded").read_text().splitlines()]
    leaves = {stack.rsplit(";", 1)[-1] for stack, _ in stacks}
    assert any(name.startswith("hello!") for name in leaves), "the hello server's own functions"
    assert any(name.startswith("kwast_kernel::") for name in leaves)
    # The kernel's functions called from the server's, stacked on them.
    assert any(re.search(r"hello!.*;kwast_kernel::wasm::", stack) for stack, _ in stacks)
    # Calls the kernel's DWARF says were inlined, as frames above the kernel function they were
    # inlined into: `debug::state::update` and the `update_interrupts_off` it calls, both
    # #[inline(always)], on every event recorded.
    update = ";kwast_kernel::debug::state::update_[inlined];kwast_kernel::debug::state::update_interrupts_off_[inlined]"
    assert any(update in stack for stack, _ in stacks)
    for stack, _ in stacks:
        frames = stack.split(";")
        assert all(i > 0 and "!" not in frames[i - 1] for i, frame in enumerate(frames) if frame.endswith("_[inlined]"))
    assert sum(int(count) for _, count in stacks) == int(done.stdout.split()[0])
    # The tree under every thread's first frame: the server's own functions are in it.
    tree = done.stdout.split("per 1: kwast_kernel::sched::thread_start and what it called\n")[1]
    assert re.search(r"^\s+[\d.]+\s+[\d.]+\s+hello!", tree, re.MULTILINE), tree[:2000]
    # A server function, instruction by instruction (nothing is inlined into wasm): its counts
    # add up to its own instructions in the stacks.
    annotation = done.stdout.split("the instructions of hello!printf_core")[1].split("\n\n")[0].splitlines()[1:]
    own = sum(int(count) for stack, count in stacks if stack.endswith(";hello!printf_core"))
    assert annotation and sum(float(line.split()[0]) for line in annotation) == own > 0
    assert all(re.match(r"\s+[\d.]+  0x[0-9a-f]+  [a-z]", line) for line in annotation), annotation[:5]
    # The comparison: the totals, and what went largest first.
    total = int(done.stdout.split()[0])
    comparison = done.stdout.split("\nper 1: ")[1].splitlines()
    assert comparison[0] == f"1000000000.0 instructions before, {total:.1f} now, {total - 10**9:+.1f} " \
                            f"({100 * (total - 10**9) / 10**9:+.1f} %)"
    assert comparison[3].split() == ["1000000000.0", "0.0", "-1000000000.0", "gone"]
    assert any(line.split()[-1].startswith("hello!") for line in comparison[4:]), comparison[:30]


def test_the_tree_under_a_function_merges_its_stacks_and_divides_per_operation():
    # `call` ran from two places; its tree merges both. Figures per operation (per=2); `rare`
    # is under the 1 % floor; a chain of single children keeps its depth.
    result = profile.Profile(total=1000, stacks={
        ("main", "call"): 20,
        ("main", "call", "copy"): 300,
        ("other", "call", "block", "trap", "switch"): 500,
        ("other", "call", "block", "trap"): 100,
        ("main", "call", "rare"): 4,
        ("main", "elsewhere"): 76,
    })
    assert result.tree("call", per=2).splitlines() == [
        " inclusive       self  per 2: call and what it called",
        "     462.0       10.0  call",
        "     300.0        0.0    block",
        "     300.0       50.0    trap",
        "     250.0      250.0    switch",
        "     150.0      150.0    copy",
    ]
    with pytest.raises(profile.ProfileError, match="'cal' did not run in the window; did you mean call?"):
        result.tree("cal")


def test_an_annotation_counts_each_instruction_of_a_function_and_what_was_inlined_into_it():
    inlined = {0x3003: ("helper [inlined]",), 0x3005: ("helper [inlined]",),
               0x3010: ("outer [inlined]",), 0x301a: ("outer [inlined]", "inner [inlined]")}
    counts = profile.read_log(FIXTURES / "profile-two-threads.log", TWO_THREADS)
    result = profile.attribute(counts, TWO_THREADS, lambda addresses: {a: inlined[a] for a in addresses if a in inlined})
    # `work` ran once in each thread; `trap`, which it called, is not its own.
    assert result.annotate("work").splitlines() == [
        "     count  per 1: the instructions of work (5.0), one by one",
        "       1.0  0x3000  incq     %rax",
        "       1.0  0x3003  int      $0x81                               helper [inlined]",
        "       1.0  0x3005  retq                                         helper [inlined]",
        "       1.0  0x3010  movabsq  $0, %rax                            outer [inlined]",
        "       1.0  0x301a  retq                                         inner [inlined]",
    ]
    assert result.annotate("outer [inlined]").splitlines()[1:] == [
        "       1.0  0x3010  movabsq  $0, %rax",
        "       1.0  0x301a  retq                                         inner [inlined]",
    ]
    log_result = profile.attribute(profile.read_log(FIXTURES / "profile-two-threads.log", TWO_THREADS), TWO_THREADS)
    # Every instruction run is in exactly one annotation: the functions' add up to the total.
    assert sum(float(line.split()[0]) for f in ("main_a", "main_b", "work", "trap", "switch")
               for line in log_result.annotate(f).splitlines()[1:]) == log_result.total
    with pytest.raises(profile.ProfileError, match="'wrk' did not run in the window; did you mean work?"):
        result.annotate("wrk", per=2)
    only_called = profile.Profile(total=20, stacks={("main", "call"): 20}, instructions={0x10: (20, "nop", ("call",))})
    with pytest.raises(profile.ProfileError, match="'main' ran none of its own instructions in the window, only calls"):
        only_called.annotate("main")


def test_a_comparison_shows_what_changed_since_a_profile_written_earlier(tmp_path):
    # Written and read back whole: names with spaces and `;`, as Rust's are. `copy` shrank,
    # `gone` went, `new [inlined]` came; `call`'s own count is the same (not listed as self).
    before = profile.Profile(total=1000, stacks={
        ("main", "call"): 100, ("main", "call", "copy<[u8; 4]>"): 600, ("main", "gone"): 300})
    now = profile.Profile(total=800, stacks={
        ("main", "call"): 100, ("main", "call", "copy<[u8; 4]>"): 500, ("main", "call", "new [inlined]"): 200})
    profile.write(before, tmp_path, "before")
    loaded = profile.Profile.load(tmp_path)
    assert (loaded.total, loaded.stacks) == (before.total, before.stacks)
    assert now.compare(loaded, per=2).splitlines() == [
        "per 2: 500.0 instructions before, 400.0 now, -100.0 (-20.0 %)",
        "",
        "    before        now     change  function (its own instructions), largest changes first",
        "     150.0        0.0     -150.0  gone",
        "       0.0      100.0     +100.0  new [inlined]",
        "     300.0      250.0      -50.0  copy<[u8; 4]>",
        "",
        "    before        now     change  function (with what it called), largest changes first",
        "     150.0        0.0     -150.0  gone",
        "     500.0      400.0     -100.0  main",
        "       0.0      100.0     +100.0  new [inlined]",
        "     350.0      400.0      +50.0  call",
        "     300.0      250.0      -50.0  copy<[u8; 4]>",
    ]
    assert now.compare(now).splitlines()[3] == "  (no function changed)"


def test_a_comparison_against_no_profile_says_what_is_missing(tmp_path):
    with pytest.raises(profile.ProfileError, match=r"profile.speedscope.json: no profile there \(`kwast-bench profile --out"):
        profile.Profile.load(tmp_path)
    (tmp_path / "profile.speedscope.json").write_text('{"profiles": []}')
    with pytest.raises(profile.ProfileError, match="not a profile kwast-bench wrote"):
        profile.Profile.load(tmp_path)
    done = subprocess.run([sys.executable, "-m", "workbench.cli", "profile", "--against", str(tmp_path / "nowhere")],
                          cwd=SETTINGS.root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--against" in done.stderr and "no profile there" in done.stderr, done.stderr
