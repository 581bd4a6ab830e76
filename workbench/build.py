"""Building the kernel (cargo) and the wasm servers (make + clang), incrementally.

Both tools decide themselves what is out of date; we run them as steps, pass their output
through line by line, and on failure keep the compiler's own words.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .settings import Settings

_ERROR = re.compile(r"^(error(\[\w+\])?:|.*:\d+:\d+: (fatal )?error:|make: \*\*\*)")


@dataclass(frozen=True)
class BuildStep:
    name: str
    argv: list[str]
    cwd: Path
    env: dict[str, str] | None = None


class BuildError(Exception):
    def __init__(self, step: BuildStep, returncode: int, output: list[str]):
        self.step, self.returncode, self.output = step, returncode, output
        first = self.first_error
        super().__init__(f"building {step.name} failed (exit {returncode})" + (f": {first}" if first else ""))

    @property
    def first_error(self) -> str | None:
        return next((line for line in self.output if _ERROR.match(line)), None)


def steps(settings: Settings) -> list[BuildStep]:
    """Servers, then their artifacts, then the kernel (it is built with the artifacts' digests),
    then the index of its DWARF that the workbench reads layouts and constants through."""
    return [
        BuildStep("servers", ["make", "--no-print-directory", "-C", str(settings.servers_dir),
                              f"OUT={settings.build_dir / 'servers'}"], settings.root),
        BuildStep("precompiler", ["cargo", "build", "--release"], settings.precompiler.parents[2]),
        BuildStep("artifacts", [sys.executable, "-m", "workbench.artifacts"], settings.root),
        BuildStep("kernel", ["cargo", "build", "--release"], settings.kernel_dir,
                  {"KWAST_ARTIFACT_DIGESTS": str(settings.digests_file)}),
        BuildStep("index", [sys.executable, "-m", "workbench.dwarf", str(settings.kernel_elf)], settings.root),
    ]


def run_step(step: BuildStep, on_line: Callable[[str], None] = lambda line: None) -> None:
    """Runs one step, handing each output line to `on_line`; raises `BuildError` on failure."""
    output: list[str] = []
    try:
        env = {**os.environ, **step.env} if step.env else None
        process = subprocess.Popen(step.argv, cwd=step.cwd, stdout=subprocess.PIPE, env=env,
                                   stderr=subprocess.STDOUT, text=True, errors="replace")
    except FileNotFoundError:
        raise BuildError(step, 127, [f"error: {step.argv[0]} is not installed (run `make setup`)"]) from None
    with process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                line = line.rstrip("\n")
                output.append(line)
                on_line(line)
        except BaseException:
            process.kill()
            raise
    if process.returncode != 0:
        raise BuildError(step, process.returncode, output)


def build_all(settings: Settings, on_line: Callable[[str], None] = lambda line: None) -> None:
    for step in steps(settings):
        run_step(step, on_line)
