"""Named QEMU sessions: `kwast-bench boot --name N` registers its machine so `state` and `gdb`
can attach to it by name.

A session is a JSON file `N.json` in `$XDG_RUNTIME_DIR/kwast-bench/` (or
`/tmp/kwast-sessions-$UID/`), naming the machine's private socket dir and the kernel ELF. It is
removed when the boot ends; a file whose workbench process is gone is stale and ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .qemu import BootOutcome, Machine, QemuError, process_alive
from .qemu.monitor import Visitor


class SessionError(Exception):
    pass


def registry_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(runtime) / "kwast-bench" if runtime else Path(f"/tmp/kwast-sessions-{os.getuid()}")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass
class Session:
    name: str
    pid: int            # the `kwast-bench boot` process
    socket_dir: str
    kernel: str         # the ELF the guest runs
    ram_file: bool

    @property
    def attach_socket(self) -> Path:
        return Path(self.socket_dir) / "attach.sock"

    @property
    def gdb_socket(self) -> Path:
        return Path(self.socket_dir) / "gdb.sock"

    @property
    def ram_path(self) -> Path:
        return Path(self.socket_dir) / "ram"


def running() -> list[Session]:
    sessions = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            session = Session(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if process_alive(session.pid) and Path(session.socket_dir).is_dir():
            sessions.append(session)
        else:  # its boot was killed before it could clean up
            path.unlink(missing_ok=True)
    return sessions


def register(name: str, machine) -> Path:
    if not name or "/" in name or name.startswith("."):
        raise SessionError(f"bad session name {name!r}: use letters, digits, - and _")
    path = registry_dir() / f"{name}.json"
    if any(s.name == name for s in running()):
        raise SessionError(f"a session named {name!r} is already running: pick another --name")
    session = Session(name, os.getpid(), str(machine.socket_dir), str(machine.image.path), machine.ram_file)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(session)))
    temporary.replace(path)  # readers never see half a file
    return path


async def boot_named(settings, hardware, image, timeout: float, append: str, on_serial, name: str) -> BootOutcome:
    """Like `qemu.boot`, but registered under `name` (with guest RAM in a file, for fast `state`)."""
    async with Machine(settings, hardware, image, append, on_serial, ram_file=True) as machine:
        registered = register(name, machine)
        try:
            await machine.resume()
            return await machine.wait_exit(timeout)
        finally:
            registered.unlink(missing_ok=True)


def lookup(name: str) -> Session:
    sessions = running()
    for session in sessions:
        if session.name == name:
            return session
    names = ", ".join(s.name for s in sessions) or "none"
    raise SessionError(f"no running session named {name!r} (running: {names}); start one with "
                       f"`kwast-bench boot --name {name} --append hold`")


class Attached(Visitor):
    """A QMP connection to a named session's second monitor: the verbs of a Machine."""

    def __init__(self, session: Session):
        super().__init__(session.attach_socket, Path(session.socket_dir))
        self.session = session
        self.ram_file, self.ram_path = session.ram_file, session.ram_path
        self.gdb_socket = session.gdb_socket

    async def __aenter__(self) -> Attached:
        try:
            await super().__aenter__()
        except QemuError as error:
            raise SessionError(f"cannot attach to session {self.session.name!r}: {error}") from None
        return self
