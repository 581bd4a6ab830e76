"""`workbench.toml`: where things are and how long to wait for them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "workbench.toml"


class SettingsError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    root: Path
    kernel_dir: Path
    servers_dir: Path
    build_dir: Path
    configs_dir: Path
    scenarios_dir: Path
    default_config: Path
    boot_timeout: float
    qmp_connect_timeout: float
    quit_timeout: float

    @property
    def kernel_elf(self) -> Path:
        return self.kernel_dir / "target/x86_64-unknown-linux-gnu/release/kwast-kernel"

    def server_wasm(self, name: str) -> Path:
        return self.build_dir / "servers" / f"{name}.wasm"

    @property
    def precompiler(self) -> Path:
        return self.root / "engine/precompile/target/release/kwast-precompile"

    @property
    def artifacts_dir(self) -> Path:
        return self.build_dir / "artifacts"

    def server_artifact(self, name: str, cpu_model: str) -> Path:
        """A server precompiled for a CPU model's features (see workbench/artifacts.py)."""
        return self.artifacts_dir / cpu_model / f"{name}.cwasm"

    @property
    def digests_file(self) -> Path:
        """SHA-256 of every artifact, compiled into the kernel: the ones it will run."""
        return self.artifacts_dir / "digests.txt"


def find_root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` holding workbench.toml."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / FILE_NAME).is_file():
            return directory
    raise SettingsError(f"no {FILE_NAME} in {here} or any directory above it: run kwast-bench inside the Kwast repository")


def load(root: Path | None = None) -> Settings:
    root = find_root(root)
    path = root / FILE_NAME
    try:
        data = tomllib.loads(path.read_text())
        paths, timeouts = data["paths"], data["timeouts"]
        return Settings(
            root=root,
            kernel_dir=root / paths["kernel"],
            servers_dir=root / paths["servers"],
            build_dir=root / paths["build"],
            configs_dir=root / paths["configs"],
            scenarios_dir=root / paths["scenarios"],
            default_config=root / data["defaults"]["config"],
            boot_timeout=float(timeouts["boot"]),
            qmp_connect_timeout=float(timeouts["qmp_connect"]),
            quit_timeout=float(timeouts["quit"]),
        )
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"{path}: {error}") from None
    except KeyError as error:
        raise SettingsError(f"{path}: missing setting {error.args[0]!r}") from None
