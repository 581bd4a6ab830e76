"""servers/include/kwast.h mirrors numbers the kernel declares: check they agree, through the
kernel's ELF and DWARF, so neither side can drift."""

import re

from conftest import SETTINGS
from workbench import dwarf

HEADER = SETTINGS.servers_dir / "include/kwast.h"


def header_defines() -> dict[str, int]:
    return {name: int(value, 0) for name, value in
            re.findall(r"^#define (KWAST_\w+)\s+\(?(-?(?:0x[0-9a-f]+|\d+))", HEADER.read_text(), re.M)}


def test_error_codes_match_the_kernel(kernel_image):
    kernel = {name.upper(): value for name, value in kernel_image.enum("ipc::error::Error").items()}
    header = {name[len("KWAST_E"):]: value for name, value in header_defines().items() if name.startswith("KWAST_E")}
    assert kernel == header
    assert len(kernel) >= 10


def test_message_limits_match_the_kernel():
    limits = dwarf.variable(SETTINGS.kernel_elf, "KWAST_ABI_LIMITS")
    declared = dwarf.decode(limits.type, limits.initial)
    defines = header_defines()
    assert defines["KWAST_MAX_MESSAGE"] == declared.max_message == 4096
    assert defines["KWAST_MAX_TRANSFER"] == declared.max_transfer
    assert defines["KWAST_SIGNAL_BITS"] == declared.signal_bits == (1 << 63) - 1
