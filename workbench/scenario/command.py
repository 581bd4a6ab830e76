"""`kwast-bench run [PATHS...] [-j N] [--junit FILE] [--artifacts DIR] [--list] [--record]`:
scenarios headless. A matrix file runs every combination; `FILE[combination]` runs one.
`kwast-bench replay ARTIFACT_DIR`: a recorded run again, checked against its recording."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from .. import replay
from ..yamlmodel import ConfigError
from . import model
from .runner import Result, Run, discover, load_all, run, run_all


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="run scenarios headless (each in its own QEMU); exit 0 when all pass")
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                     help="scenario files or directories (default: the scenarios directory); "
                          "FILE[combination] for one run of a matrix scenario")
    run.add_argument("-j", "--jobs", type=int, default=1, help="scenarios at once (default 1)")
    run.add_argument("--junit", type=Path, metavar="FILE", help="also write a JUnit XML report here")
    run.add_argument("--artifacts", type=Path, metavar="DIR",
                     help="one folder per scenario: serial log, QMP events, screendumps, state at failure "
                          "(default: build/scenario-artifacts)")
    run.add_argument("--list", action="store_true", help="list the runs (one per matrix combination), run nothing")
    run.add_argument("--record", action="store_true",
                     help="record each run into its artifact folder's recording/, for `kwast-bench replay`")

    again = commands.add_parser("replay", help="replay a recorded scenario run: the same console byte for byte, "
                                               "its steps judged again")
    again.add_argument("folder", type=Path, metavar="ARTIFACT_DIR",
                       help="the run's artifact folder (holding recording/), or the recording folder")
    again.add_argument("--gdb", action="store_true",
                       help="instead of judging the steps, replay under GDB with the kernel's symbols, held at the start")
    again.add_argument("--reverse", action="store_true",
                       help="with --gdb: take snapshots during the replay, so reverse-stepi and reverse-continue work")
    again.add_argument("--ex", action="append", default=[], metavar="CMD",
                       help="with --gdb: run this GDB command (repeatable), print its output, then leave")


def cmd_run(args: argparse.Namespace, settings) -> int:
    runs = [run for path in args.paths or [settings.scenarios_dir] for run in chosen(path)]
    if not runs:
        print(f"kwast-bench: no scenarios in {', '.join(map(str, args.paths or [settings.scenarios_dir]))}",
              file=sys.stderr)
        return 2
    if args.list:
        for run in runs:
            print(f"{run.label:32} {run.name if isinstance(run, model.Scenario) else run.error}")
        return 0
    if args.record:
        # Named now, before any QEMU starts, not found out at the end.
        problems = [f"{run.path}:{line}: {run.label}: {why}" for run in runs if isinstance(run, model.Scenario)
                    for line, why in replay.unrecordable(run, settings)]
        if problems:
            print("kwast-bench: cannot record every run:\n  " + "\n  ".join(problems), file=sys.stderr)
            return 2
    artifacts = args.artifacts or settings.build_dir / "scenario-artifacts"

    def show(result: Result) -> None:
        print(result.report(), flush=True)

    results = asyncio.run(run_all(runs, settings, artifacts, args.jobs, on_result=show, record=args.record))
    failed = [r for r in results if not r.passed]
    total = sum(r.seconds for r in results)
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed ({total:.1f} s of scenario time)"
          + (": " + ", ".join(r.name for r in failed) if failed else ""))
    if args.junit:
        write_junit(results, args.junit)
    return 0 if not failed else 1


def cmd_replay(args: argparse.Namespace, settings) -> int:
    """0: the replay gave the recorded console byte for byte and the same judgement; 1: it did
    not; 2: it could not be replayed (a different build, no recording)."""
    folder = args.folder
    recorded = replay.recording_folder(folder)
    if (args.reverse or args.ex) and not args.gdb:
        print("kwast-bench: --reverse and --ex go with --gdb", file=sys.stderr)
        return 2
    if args.gdb:
        try:
            return asyncio.run(_replay_under_gdb(recorded, settings, args))
        except (replay.ReplayError, ConfigError) as error:
            print(f"kwast-bench: cannot replay {folder}: {error}", file=sys.stderr)
            return 2
    try:
        scenario, recording = replay.scenario_of(recorded)
        tape = replay.Tape(recorded, recording)
        print(f"replaying {scenario.name} ({scenario.path}), recorded "
              f"{'PASS' if recording.passed else 'FAIL'} in {recording.seconds:.1f} s", flush=True)
        result = asyncio.run(run(scenario, settings, recorded.parent / replay.REPLAY_FOLDER, tape=tape))
    except (replay.ReplayError, ConfigError) as error:
        print(f"kwast-bench: cannot replay {folder}: {error}", file=sys.stderr)
        return 2
    print(result.report(full=True))
    serial = result.serial_difference
    print(f"serial output: {serial or f'identical to the recording ({recording.serial_size} bytes)'}")
    differences = replay.judged_alike(recording, result)
    verdict = f"{'PASS' if result.passed else 'FAIL'}" + (f" at {result.where}" if result.where else "")
    print("judgement: " + ("the same as the recording: " + verdict if not differences
                           else "NOT the same as the recording:\n  " + "\n  ".join(differences)))
    return 0 if serial is None and not differences else 1


async def _replay_under_gdb(recorded: Path, settings, args: argparse.Namespace) -> int:
    from ..cli.inspect import interactive_gdb, scripted_gdb  # the GDB commands' own ways to run it

    async with replay.debugged(recorded, settings, reverse=args.reverse) as machine:
        setup = replay.gdb_commands(machine) if args.reverse else []
        if args.ex:
            return await asyncio.to_thread(scripted_gdb, machine.image.path, machine.gdb_socket, args.ex, setup)
        return await interactive_gdb(machine.image.path, machine.gdb_socket, setup)


def chosen(path: Path) -> list[Run]:
    """The runs `path` names: every run of the files there, or `FILE[combination]`'s one."""
    one = re.fullmatch(r"(.+)\[([^\]]+)\]", str(path))
    if path.exists() or one is None:
        return load_all(discover([path]))
    runs = load_all(discover([Path(one[1])]))
    label = f"{Path(one[1]).stem}[{one[2]}]"
    picked = [run for run in runs if run.label == label]
    if not picked:
        raise ConfigError(one[1], 0, "matrix", f"no run {label} (runs: {', '.join(r.label for r in runs)})")
    return picked


def write_junit(results: list[Result], path: Path) -> None:
    suite = ElementTree.Element("testsuite", name="kwast-scenarios", tests=str(len(results)),
                                failures=str(sum(not r.passed for r in results)),
                                time=f"{sum(r.seconds for r in results):.3f}")
    for result in results:
        case = ElementTree.SubElement(suite, "testcase", classname="scenarios", name=result.name,
                                      file=str(result.path or ""), time=f"{result.seconds:.3f}")
        if not result.passed:
            failure = ElementTree.SubElement(case, "failure", message=f"{result.where}: {result.reason}")
            failure.text = result.report()
        ElementTree.SubElement(case, "system-out").text = "\n".join(result.log)
    path.parent.mkdir(parents=True, exist_ok=True)
    ElementTree.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)
