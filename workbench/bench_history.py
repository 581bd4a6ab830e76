"""The benchmark's history: `kwast-bench bench --history` keeps each run's figures, keyed by the
git commit measured, in build/bench-history.json, and draws one SVG chart per figure across the
commits, with its target as a line (pygal). Exact figures (guest instructions, their ratios)
are comparable across machines; the latency suite's wall-clock ones only on one machine."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pygal


def commit(root: Path) -> str:
    """The commit measured: its short hash, `-dirty` when the work tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def append(path: Path, measured: str, figures: list[dict]) -> list[dict]:
    """Adds this run, replacing an earlier run of the same commit; returns every run, oldest first."""
    runs = json.loads(path.read_text()) if path.exists() else []
    runs = [run for run in runs if run["commit"] != measured]
    runs.append({"commit": measured, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "figures": figures})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(runs, indent=1) + "\n")
    return runs


def charts(runs: list[dict], folder: Path) -> list[Path]:
    """One SVG per figure: its value at each commit that measured it, and its target."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(dict.fromkeys(f["name"] for run in runs for f in run["figures"]))
    written = []
    for name in names:
        points = [(run["commit"], next((f for f in run["figures"] if f["name"] == name), None)) for run in runs]
        points = [(commit, figure) for commit, figure in points if figure is not None]
        unit = points[-1][1]["unit"]
        chart = pygal.Line(title=f"{name} ({unit})", x_label_rotation=30, show_legend=True,
                           width=720, height=360, dots_size=3, explicit_size=True)
        chart.x_labels = [commit for commit, _ in points]
        chart.add("measured", [figure["value"] for _, figure in points])
        targets = [figure.get("target") for _, figure in points]
        if any(t is not None for t in targets):
            chart.add("target", targets, show_dots=False, stroke_style={"dasharray": "6, 4"})
        path = folder / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".svg")
        path.write_bytes(chart.render())
        written.append(path)
    return written
