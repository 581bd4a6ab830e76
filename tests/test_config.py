"""The hardware config model: every shipped config loads; every mistake names file, line, field."""

from pathlib import Path

import pytest

from workbench import config
from workbench.yamlmodel import ConfigError

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    hardware = config.load(path)
    assert hardware.path == path
    assert hardware.memory >= config.MIN_MEMORY


def test_default_config_values():
    hardware = config.load(Path(__file__).parent.parent / "configs/default.yaml")
    assert hardware.memory == 128 << 20
    assert hardware.cpu == config.Cpu(model="qemu64", count=1)
    assert [s.name for s in hardware.servers] == ["hello"]


def test_defaults_fill_missing_keys(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text("memory: 64M\n")
    hardware = config.load(path)
    assert hardware.memory == 64 << 20
    assert hardware.cpu.count == 1 and hardware.display == "none" and hardware.servers == []


@pytest.mark.parametrize("raw,size", [("64M", 64 << 20), ("1G", 1 << 30), ("65536K", 64 << 20),
                                      ("32MiB", 32 << 20), (33554432, 32 << 20)])
def test_memory_sizes(raw, size):
    assert config.memory_size(raw) == size


BAD = [
    # (YAML text, line, field, words the message must contain)
    ("memory: 128M\nmemroy: 64M\n", 2, "memroy", "unknown key"),
    ("memory: lots\n", 1, "memory", "not a size"),
    ("memory: 1M\n", 1, "memory", "between 16M and 3G"),
    ("memory: 128M\ncpu:\n  model: qemu64\n  count: 0\n", 4, "cpu.count", "between 1 and 64"),
    ("cpu:\n  count: two\n", 2, "cpu.count", "expected an integer"),
    ("cpu:\n  count: true\n", 2, "cpu.count", "expected an integer"),
    ("cpu:\n  model: pentium5\n", 2, "cpu.model", "not one of"),
    ("cpu:\n  threads: many\n", 2, "cpu.threads", "not one of"),
    ("icount: true\ncpu:\n  count: 2\n  threads: multi\n", 1, "(top level)", "cannot be used with cpu.threads: multi"),
    ("servers:\n  - name: hello\n    cpu: 64\n", 3, "servers[0].cpu", "between 0 and 63"),
    ("display: hdmi\n", 1, "display", "not one of 'none' or 'vga'"),
    ("serial: 3\n", 1, "serial", "expected true or false"),
    ("servers:\n  - args: [x]\n", 2, "servers[0]", "missing required key: name"),
    ("servers:\n  - name: hello\n  - name: Bad Name\n", 3, "servers[1].name", "server directory name"),
    ("servers:\n  - name: hello\n    args: [a,b, 'c,d']\n", 3, "servers[0].args", "without commas"),
    ("servers: hello\n", 1, "servers", "expected a list"),
    ("cpu: [1, 2]\n", 1, "cpu", "expected a mapping"),
    ("memory: 128M\nmemory: 64M\n", 2, "memory", "given twice"),
    ("memory: [128M\n", 2, "", "not valid YAML"),
    ("- just\n- a list\n", 1, "(top level)", "expected a mapping"),
]


@pytest.mark.parametrize("text,line,field,words", BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_config_names_file_line_and_field(tmp_path, text, line, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (path, line, field)
    assert words in error.message
    assert str(error).startswith(f"{path}:{line}: ")


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="empty"):
        config.load(empty)
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.yaml")
