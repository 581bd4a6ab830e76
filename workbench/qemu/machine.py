"""One QEMU running the Kwast kernel: the process, its sockets, and the verbs of `Monitor`.

A `Machine` owns everything it starts: the QEMU process, a private temp dir holding its unix
sockets (QMP, serial), and the tasks reading them. Leaving `async with Machine(...)` ends all of
it on every path: normal exit, error, timeout, cancellation (Ctrl-C). QEMU also gets
PR_SET_PDEATHSIG, so even a workbench killed with SIGKILL leaves no QEMU behind.
"""

from __future__ import annotations

import asyncio
import codecs
import collections
import contextlib
import ctypes
import functools
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

from qemu.qmp import QMPClient
from qemu.qmp.protocol import ConnectError

from ..debug_port import DebugPort, of as debug_port_of
from ..config import HardwareConfig
from ..kernel_image import KernelImage
from ..settings import Settings
from .monitor import SNAPSHOT_NODE, Feature, Monitor, QemuError

QEMU = "qemu-system-x86_64"
# Where the pc machine puts the UART of the second -serial (COM2).
SECOND_SERIAL_PORT = 0x2f8
_PR_SET_PDEATHSIG = 1

# qemu.qmp logs a traceback for every refused connect, which our start-up retries expect;
# failures reach the user as QemuError instead.
logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# A machine's private dir names the workbench process that made it (`owner.pid`): a dir whose
# process is gone (killed before `shutdown` ran) is removed at the next machine's start, with
# its guest RAM file. A dir without the file (an older workbench's) goes once it is an hour old
# and no QEMU answers on its QMP socket.
DIR_PREFIX = "kwast-"
# What `mkdtemp` makes of the prefix: eight of its random characters, so that nothing else
# named kwast-* there (the sessions' registry, `session.registry_dir`) is taken for one.
_MACHINE_DIR = re.compile(re.escape(DIR_PREFIX) + r"[a-z0-9_]{8}")
OWNER_FILE = "owner.pid"
_UNOWNED_AGE_S = 3600


def process_alive(pid: int) -> bool:
    """Whether process `pid` exists (a machine's or a session's workbench)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _answers(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def sweep_stale_dirs(root: Path | None = None) -> list[Path]:
    """Removes the private dirs of machines whose workbench is gone; returns them."""
    swept = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        if not _MACHINE_DIR.fullmatch(folder.name):
            continue
        try:
            owner = int((folder / OWNER_FILE).read_text())
            stale = not process_alive(owner)
        except FileNotFoundError:
            try:
                old = time.time() - folder.stat().st_mtime > _UNOWNED_AGE_S
            except OSError:
                continue
            stale = old and not _answers(folder / "qmp.sock")
        except (OSError, ValueError):
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            swept.append(folder)
    return swept


@dataclass
class BootOutcome:
    """How a boot ended. `status` is one of:
    success / failure: the kernel left through isa-debug-exit with that code;
    reset: the guest reset (a triple fault, with -no-reboot);
    timeout: the guest was still running when the time was up;
    exited: QEMU ended some other way (see `qemu_exit` and `stderr`)."""

    status: Literal["success", "failure", "reset", "timeout", "exited"]
    qemu_exit: int | None
    serial: str
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def describe(self) -> str:
        return {
            "success": "kernel shut down cleanly",
            "failure": "kernel reported failure",
            "reset": "guest reset (triple fault?)",
            "timeout": "timed out: the guest was still running",
            "exited": f"QEMU exited with status {self.qemu_exit}" + (f": {self.stderr.strip()}" if self.stderr.strip() else ""),
        }[self.status]


@dataclass
class Machine(Monitor):
    settings: Settings
    config: HardwareConfig
    image: KernelImage
    extra_cmdline: str = ""
    on_serial: Callable[[str], None] | None = None
    # Guest RAM in a file (socket_dir/ram) the host can mmap: reads without any QEMU round trip.
    ram_file: bool = False
    # Log every translation block QEMU executes, and each block's instructions when translated
    # (`-d exec,nochain,in_asm`) and each interrupt with the interrupted stack pointer (`int`), to
    # `exec_log_path`: `kwast-bench profile` counts them and rebuilds call stacks.
    # Gigabytes, in the private dir, so removed with it.
    exec_log: bool = False
    # QEMU's record/replay: "record" logs every input the guest sees into `rr_file`, "replay"
    # runs the guest again from that log, instruction for instruction (workbench/replay.py).
    rr: Literal["record", "replay"] | None = None
    rr_file: Path | None = None
    serial_lines: list[str] = field(default_factory=list, init=False)
    events: collections.deque = field(default_factory=lambda: collections.deque(maxlen=1000), init=False)

    def __post_init__(self) -> None:
        self.qmp = QMPClient("kwast-bench")
        self.process: asyncio.subprocess.Process | None = None
        self.socket_dir: Path | None = None
        self._tasks: list[asyncio.Task] = []
        self._stream_tasks: list[asyncio.Task] = []
        self._partial = ""
        self._shutdown_reason: str | None = None
        self._stderr = bytearray()
        self.serial_writer: asyncio.StreamWriter | None = None
        self._debug_port_writer: asyncio.StreamWriter | None = None
        # The console's bytes as QEMU sent them (a replay is compared with its recording byte for byte).
        self.serial_bytes = bytearray()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    # --- command line -------------------------------------------------------------------

    def modules(self) -> list[str]:
        """One `path args...` string per server, in the order the config lists them."""
        modules = []
        for server in self.config.servers:
            path = (self.settings.root / server.artifact if server.artifact
                    else self.settings.server_artifact(server.name, self.config.cpu.model))
            if not path.is_file():
                raise QemuError(f"server module {path} does not exist (run `kwast-bench build`; "
                                f"is there a servers/{server.name}/ directory?)")
            modules.append(" ".join([str(path), *server.module_settings(), "--", *server.args]))
        return modules

    def argv(self) -> list[str]:
        assert self.socket_dir is not None
        c = self.config
        cmdline = " ".join(word for word in (c.cmdline, self.extra_cmdline) if word)
        argv = [
            QEMU, "-accel", "tcg,thread=multi" if c.cpu.threads == "multi" else "tcg", "-nodefaults", "-no-reboot", "-S",
            "-machine", f"pc,i8042={'on' if c.ps2_keyboard else 'off'}",
            "-m", f"{c.memory >> 20}M", "-cpu", c.cpu.model, "-smp", str(c.cpu.count),
            "-display", "none",
            "-qmp", f"unix:{self.socket_dir / 'qmp.sock'},server=on,wait=off",
            "-kernel", str(self.image.path), "-append", cmdline,
        ]
        if c.display == "vga":
            argv += ["-vga", "std"]
        if c.serial and self.rr is not None:
            # Recorded, a socket's writes replayed out of step ("Missing character write event in
            # the replay log", most runs); a file's never fail, so never retry.
            argv += ["-chardev", f"file,id=com1,path={self.serial_file}", "-serial", "chardev:com1"]
        elif c.serial:
            argv += ["-chardev", f"socket,id=com1,path={self.socket_dir / 'serial.sock'},server=on,wait=off",
                     "-serial", "chardev:com1"]
        if self.rr is not None:
            # The kernel's debug port (kernel/src/debug/port.rs), COM2: what a UART receives is in
            # QEMU's log, so a recording's requests reach the replay at the same instruction.
            # QEMU 7.2 logs a chardev's input only when `-serial` names it, and the second
            # `-serial` is COM2.
            base = self.debug_port.base
            if base != SECOND_SERIAL_PORT:
                raise QemuError(f"the kernel's debug port is at {base:#x}; QEMU's second -serial is at {SECOND_SERIAL_PORT:#x}")
            if not c.serial:
                argv += ["-serial", "null"]
            argv += ["-chardev", f"socket,id=debugport,path={self.debug_port_socket},server=on,wait=off",
                     "-serial", "chardev:debugport"]
        if c.isa_debug_exit:
            argv += ["-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
        modules = self.modules()
        if modules:
            argv += ["-initrd", ",".join(modules)]
        if self.rr is not None:
            # Record/replay needs icount. Not sleep=off: recorded, no typed key then reaches the
            # guest (QEMU 7.2: no IRQ 1 at all), though it would have no warp timer, the one
            # that makes stops hard to replay (workbench/replay.py). Without the config's own shift,
            # QEMU's adaptive one keeps guest time near real time, as an unrecorded run has it.
            shift = c.icount_shift if c.icount else "auto"
            argv += ["-icount", f"shift={shift},rr={self.rr},rrfile={self.rr_file}"]
        elif c.icount:
            argv += ["-icount", f"shift={c.icount_shift},sleep=off"]
        if self.exec_log:
            argv += ["-d", "exec,nochain,in_asm,int", "-D", str(self.exec_log_path)]
        if c.snapshots:
            argv += ["-blockdev", f"driver=qcow2,node-name={SNAPSHOT_NODE},file.driver=file,"
                                  f"file.filename={self.socket_dir / 'snapshots.qcow2'}"]
        if self.ram_file:
            argv += ["-object", f"memory-backend-file,id=ram,size={c.memory >> 20}M,mem-path={self.ram_path},share=on",
                     "-machine", "memory-backend=ram"]
        # For debuggers and `kwast-bench state --session`: a second QMP monitor (the first is
        # ours, and QEMU serves one client per socket) and the gdbstub, both unix sockets here.
        argv += ["-qmp", f"unix:{self.attach_socket},server=on,wait=off",
                 "-chardev", f"socket,id=gdb0,path={self.gdb_socket},server=on,wait=off",
                 "-gdb", "chardev:gdb0"]
        return argv

    @property
    def attach_socket(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "attach.sock"

    @property
    def exec_log_path(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "exec.log"

    @property
    def serial_file(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "serial.out"

    @property
    def ram_path(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "ram"

    @functools.cached_property
    def debug_port(self) -> DebugPort:
        """Where the kernel's debug port is and how its frames are laid out, from the ELF."""
        return debug_port_of(self.image.path)

    @property
    def debug_port_socket(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "debug-port.sock"

    @property
    def gdb_socket(self) -> Path:
        assert self.socket_dir is not None
        return self.socket_dir / "gdb.sock"

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Machine:
        try:
            await self.start()
        except BaseException:
            await self.shutdown()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def start(self) -> None:
        """Starts QEMU with the CPU held (-S); `resume()` lets the kernel run."""
        sweep_stale_dirs()
        self.socket_dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        (self.socket_dir / OWNER_FILE).write_text(str(os.getpid()))
        if self.config.snapshots:
            await self._create_snapshot_disk()
        argv = self.argv()
        if self.config.serial and self.rr is not None:
            self.serial_file.touch()  # ours to open before QEMU starts; QEMU truncates it
        try:
            self.process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, preexec_fn=_die_with_parent, start_new_session=True)
        except FileNotFoundError:
            raise QemuError(f"{QEMU} is not installed (run `make setup`)") from None
        self._stream_tasks.append(asyncio.create_task(self._read_stderr()))
        await self._connect_qmp()
        self._tasks.append(asyncio.create_task(self._read_events()))
        if self.config.serial and self.rr is not None:
            self._stream_tasks.append(asyncio.create_task(self._follow_serial_file()))
        elif self.config.serial:
            # Keep the writer: dropping it closes the connection.
            reader, self.serial_writer = await asyncio.open_unix_connection(str(self.socket_dir / "serial.sock"))
            self._stream_tasks.append(asyncio.create_task(self._read_serial(reader)))
        if self.rr == "record":  # connected with the guest held at reset, as every recording
            _, self._debug_port_writer = await asyncio.open_unix_connection(str(self.debug_port_socket))

    async def _create_snapshot_disk(self) -> None:
        assert self.socket_dir is not None
        # Holds only device state and RAM, so its size is nominal.
        try:
            qemu_img = await asyncio.create_subprocess_exec(
                "qemu-img", "create", "-q", "-f", "qcow2", str(self.socket_dir / "snapshots.qcow2"), "16M",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except FileNotFoundError:
            raise QemuError("qemu-img is not installed (run `make setup`)") from None
        _, stderr = await qemu_img.communicate()
        if qemu_img.returncode != 0:
            raise QemuError(f"qemu-img could not create the snapshot disk: {stderr.decode(errors='replace').strip()}")

    async def _connect_qmp(self) -> None:
        assert self.process is not None and self.socket_dir is not None
        path = self.socket_dir / "qmp.sock"
        deadline = time.monotonic() + self.settings.qmp_connect_timeout
        while True:
            if self.process.returncode is not None:
                await asyncio.sleep(0.05)  # let stderr arrive
                raise QemuError(f"QEMU exited at start (status {self.process.returncode}): "
                                f"{self._stderr.decode(errors='replace').strip()}")
            if path.exists():
                try:
                    await self.qmp.connect(str(path))
                    return
                except (ConnectionError, OSError, ConnectError):
                    pass  # the socket file exists a moment before QEMU listens on it
            if time.monotonic() > deadline:
                raise QemuError(f"QEMU did not open its QMP socket within {self.settings.qmp_connect_timeout} s")
            await asyncio.sleep(0.02)

    async def command(self, name: str, arguments: dict | None = None, timeout: float = 10) -> object:
        """One QMP command; qemu.qmp has no timeout of its own."""
        return await asyncio.wait_for(self.qmp.execute(name, arguments), timeout)

    def _lacks(self, feature: Feature) -> str | None:
        c = self.config
        if feature == "display" and c.display != "vga":
            return f"{c.path}: display is {c.display}: a screendump needs `display: vga`"
        if feature == "keyboard" and not c.ps2_keyboard:
            return f"{c.path}: ps2_keyboard is off: turn it on to type into the guest"
        if feature == "snapshots" and not c.snapshots:
            return f"{c.path}: snapshots are off: add `snapshots: true` to use savevm/loadvm"
        return None

    def _keys_from_here(self) -> bool:
        return self.rr == "record"

    @contextlib.asynccontextmanager
    async def reboots_allowed(self):
        """A guest reset meanwhile reboots the guest; otherwise (-no-reboot) it ends QEMU."""
        await self.command("set-action", {"reboot": "reset"})
        try:
            yield
        finally:
            if self.process is not None and self.process.returncode is None:
                await self.command("set-action", {"reboot": "shutdown"})

    async def wait_exit(self, timeout: float) -> BootOutcome:
        """Waits for QEMU to end by itself and says how; `timeout` if it is still running."""
        assert self.process is not None
        try:
            code = await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout)
        except asyncio.TimeoutError:
            return BootOutcome("timeout", None, self.serial_text, self._stderr.decode(errors="replace"))
        # QEMU is gone: the serial and stderr readers reach end-of-file promptly; let them finish.
        await asyncio.wait(self._stream_tasks, timeout=2)
        return self._outcome(code)

    def _outcome(self, code: int) -> BootOutcome:
        codes = self.image.exit_codes
        status: str
        if code == codes["Success"]:
            status = "success"
        elif code == codes["Failure"]:
            status = "failure"
        elif self._shutdown_reason == "guest-reset":
            status = "reset"
        else:
            status = "exited"
        return BootOutcome(status, code, self.serial_text, self._stderr.decode(errors="replace"))  # type: ignore[arg-type]

    async def shutdown(self) -> None:
        """Ends QEMU (politely through QMP, then by force) and removes everything it used."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.power_off(), 1)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), self.settings.quit_timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                process.kill()
                await process.wait()
        with contextlib.suppress(Exception):
            await self.qmp.disconnect()
        for writer in (self.serial_writer, self._debug_port_writer):
            if writer is not None:
                writer.close()
        tasks = self._tasks + self._stream_tasks
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._stream_tasks.clear()
        if self.socket_dir is not None:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            self.socket_dir = None

    # --- the debug port -----------------------------------------------------------------

    async def debug_port_write(self, address: int, data: bytes, timeout: float = 30) -> None:
        """Has the kernel write `data` at `address` (in its own data) through the debug port a
        recording machine has; returns once the kernel has made the write, at a request poll."""
        await self.debug_port_send(b"".join(self.debug_port.frames(address, data)), timeout)

    async def debug_port_send(self, data: bytes, timeout: float = 30) -> None:
        """Bytes to the kernel's debug port, as they are, a window at a time: returns once the
        kernel has taken them all (it polls the port every 10 ms of guest time)."""
        if self._debug_port_writer is None:
            raise QemuError("only a recording machine has the kernel's debug port")
        port = self.debug_port

        async def taken() -> int:
            return int.from_bytes(await self.read_memory(port.bytes_taken, 4), "little")

        first = goal = await taken()
        deadline = time.monotonic() + timeout
        for start in range(0, len(data), port.window):
            chunk = data[start:start + port.window]
            self._debug_port_writer.write(chunk)
            await self._debug_port_writer.drain()
            goal += len(chunk)
            while await taken() < goal:
                if time.monotonic() > deadline:
                    raise QemuError(f"the kernel took {await taken() - first} of {len(data)} bytes from "
                                    f"its debug port in {timeout:g} s (it polls the port every 10 ms of guest time; "
                                    "is the guest running?)")
                await asyncio.sleep(0.005)

    # --- readers ------------------------------------------------------------------------

    @property
    def serial_text(self) -> str:
        return "\n".join(self.serial_lines + ([self._partial] if self._partial else []))

    async def _read_serial(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(4096):
            self._serial_arrived(chunk)

    async def _follow_serial_file(self) -> None:
        """Like `tail -f` on the serial file, to its end once QEMU has ended."""
        assert self.process is not None
        with self.serial_file.open("rb") as file:
            while True:
                ended = self.process.returncode is not None
                if chunk := file.read(4096):
                    self._serial_arrived(chunk)
                elif ended:
                    return
                else:
                    await asyncio.sleep(0.01)

    async def serial_settled(self, timeout: float = 5) -> None:
        """Recording or replaying: every byte QEMU has written to the console so far has been
        read (a held guest writes no more)."""
        if self.rr is None or not self.config.serial:
            return
        deadline = time.monotonic() + timeout
        while self.serial_file.stat().st_size > len(self.serial_bytes) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    def _serial_arrived(self, chunk: bytes) -> None:
        self.serial_bytes += chunk
        # Incremental: a character of several bytes (a kill reason's arrows) may be split between reads.
        text = self._decoder.decode(chunk).replace("\r", "")
        *complete, self._partial = (self._partial + text).split("\n")
        self.serial_lines.extend(complete)
        # After: a callback looking at `serial_text` sees this chunk too (the last one may be
        # the only one that completes what it waits for).
        if self.on_serial is not None:
            self.on_serial(text)

    async def _read_stderr(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while chunk := await self.process.stderr.read(4096):
            self._stderr += chunk

    async def _read_events(self) -> None:
        # Drained continuously: qemu.qmp's listener would otherwise keep every event forever.
        async for event in self.qmp.events:
            self.events.append(event)
            if event["event"] == "SHUTDOWN":
                self._shutdown_reason = event.get("data", {}).get("reason")


async def boot(settings: Settings, config: HardwareConfig, image: KernelImage, timeout: float,
               extra_cmdline: str = "", on_serial: Callable[[str], None] | None = None) -> BootOutcome:
    """Boots the kernel until it exits (or `timeout` seconds pass) and says how it ended."""
    async with Machine(settings, config, image, extra_cmdline, on_serial) as machine:
        await machine.resume()
        return await machine.wait_exit(timeout)
