"""The driver for the machine: QEMU running the Kwast kernel, worked through verbs. No QMP
command name appears outside this package.

- `monitor`: `Monitor`, the verbs over QMP (status, pause, resume, paused, reset, power_off,
  inject_nmi, send_keys, tap_key, screendump, screen_text, save_snapshot, load_snapshot,
  replay_position, replay_break, replay_seek, read_memory), shared by `Machine` and `Visitor` (a
  client on another process's QEMU: `session.Attached`, a replay's GDB).
- `machine`: `Machine`, one QEMU process with its private sockets, serial console and events,
  and `reboots_allowed`; `boot` runs one to its end; `process_alive`, whether a workbench that
  made a machine's dir or a session is still there.
- `keys`: the US keyboard: text and key names to QEMU's qcodes.
- `screen`: a screendump as a picture, the VGA text buffer, and whether one shows the other.
"""

from .machine import BootOutcome, Machine, boot, process_alive
from .monitor import Monitor, QemuError

__all__ = ["BootOutcome", "Machine", "Monitor", "QemuError", "boot", "process_alive"]
