"""Server artifacts: each server's .wasm precompiled (engine/precompile, Cranelift) for every CPU
model the hardware configs use, and their SHA-256 digests, which the kernel build compiles in
as the only artifacts it will run. Run as a build step: `python -m workbench.artifacts`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Callable

from . import config
from .settings import Settings, load as load_settings
from .yamlmodel import ConfigError


class ArtifactError(Exception):
    pass


def cpu_models(settings: Settings) -> list[str]:
    """The CPU models of the repository's configs (a broken config is skipped: `boot` reports it)."""
    models = {"qemu64"}
    for path in sorted(settings.configs_dir.glob("*.yaml")):
        try:
            models.add(config.load(path).cpu.model)
        except ConfigError:
            continue
    return sorted(models)


def _stale(output: Path, *inputs: Path) -> bool:
    return not output.exists() or any(i.stat().st_mtime > output.stat().st_mtime for i in inputs)


def precompile_all(settings: Settings, on_line: Callable[[str], None] = print) -> list[Path]:
    if not settings.precompiler.is_file():
        raise ArtifactError(f"{settings.precompiler} is missing: build the precompiler first (kwast-bench build)")
    servers = sorted((settings.build_dir / "servers").glob("*.wasm"))
    artifacts = []
    for model in cpu_models(settings):
        for wasm in servers:
            artifact = settings.server_artifact(wasm.stem, model)
            artifacts.append(artifact)
            if not _stale(artifact, wasm, settings.precompiler):
                continue
            artifact.parent.mkdir(parents=True, exist_ok=True)
            done = subprocess.run([str(settings.precompiler), "--cpu", model, str(wasm), str(artifact)],
                                  capture_output=True, text=True)
            on_line((done.stdout + done.stderr).strip())
            if done.returncode != 0:
                artifact.unlink(missing_ok=True)
                raise ArtifactError(f"precompiling {wasm.name} for {model} failed")
    _write_digests(settings, artifacts)
    return artifacts


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_digests(settings: Settings, artifacts: list[Path]) -> None:
    lines = "".join(f"{digest(a)} {a.relative_to(settings.artifacts_dir)}\n" for a in artifacts)
    # Rewritten only when it changes: the kernel is rebuilt whenever it does.
    if not settings.digests_file.exists() or settings.digests_file.read_text() != lines:
        settings.digests_file.write_text(lines)


def main() -> int:
    try:
        artifacts = precompile_all(load_settings())
    except ArtifactError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{len(artifacts)} artifacts up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
