"""`kwast-bench run [PATHS...] [-j N] [--junit FILE] [--artifacts DIR]`: scenarios headless."""

from __future__ import annotations

import argparse
import asyncio
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from .runner import Result, discover, run_all


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="run scenarios headless (each in its own QEMU); exit 0 when all pass")
    run.add_argument("paths", nargs="*", type=Path, metavar="PATH",
                     help="scenario files or directories (default: the scenarios directory)")
    run.add_argument("-j", "--jobs", type=int, default=1, help="scenarios at once (default 1)")
    run.add_argument("--junit", type=Path, metavar="FILE", help="also write a JUnit XML report here")
    run.add_argument("--artifacts", type=Path, metavar="DIR",
                     help="one folder per scenario: serial log, QMP events, screendumps, state at failure "
                          "(default: build/scenario-artifacts)")


def cmd_run(args: argparse.Namespace, settings) -> int:
    paths = discover(args.paths or [settings.scenarios_dir])
    if not paths:
        print(f"kwast-bench: no scenarios in {', '.join(map(str, args.paths or [settings.scenarios_dir]))}",
              file=sys.stderr)
        return 2
    artifacts = args.artifacts or settings.build_dir / "scenario-artifacts"

    def show(result: Result) -> None:
        print(result.report(), flush=True)

    results = asyncio.run(run_all(paths, settings, artifacts, args.jobs, on_result=show))
    failed = [r for r in results if not r.passed]
    total = sum(r.seconds for r in results)
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed ({total:.1f} s of scenario time)"
          + (": " + ", ".join(r.name for r in failed) if failed else ""))
    if args.junit:
        write_junit(results, args.junit)
    return 0 if not failed else 1


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
