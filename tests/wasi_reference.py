"""The reference a server's WASI is compared against: wasmtime's own WASI (the `wasmtime`
Python package, the release the kernel embeds), set up as Kwast sets up a server: arguments
`[name, *args]`, no environment, no preopened directory, empty stdin, stdout and stderr into
one console, and the server's memory limit.

    python wasi_reference.py MODULE.wasm NAME MEMORY_BYTES [ARGS...]

prints {"lines": [...], "ending": "exit N" | "trap: WHAT in F ← G ← ..."} as JSON. It runs as
its own process: wasmtime's WASI threads may complain on their way out of an interpreter."""

from __future__ import annotations

import json
import sys

import wasmtime


def run(wasm: bytes, name: str, args: list[str], memory_limit: int) -> dict:
    console = bytearray()
    wasi = wasmtime.WasiConfig()
    wasi.argv = [name, *args]
    wasi.stdout_custom = console.extend
    wasi.stderr_custom = console.extend
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=memory_limit)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, wasmtime.Module(engine, wasm))
    try:
        instance.exports(store)["_start"](store)
        ending = "exit 0"
    except wasmtime.ExitTrap as exit:
        ending = f"exit {exit.code}"
    except wasmtime.Trap as trap:
        # The message ends "Caused by: wasm trap: <what>"; the frames name where.
        what = trap.message.strip().splitlines()[-1].strip().removeprefix("wasm trap: ")
        where = " \u2190 ".join(frame.func_name or f"func[{frame.func_index}]@{frame.module_offset:#x}"
                                for frame in trap.frames)
        ending = f"trap: {what} in {where}" if where else f"trap: {what}"
    return {"lines": console.decode(errors="replace").splitlines(), "ending": ending}


if __name__ == "__main__":
    module, name, memory, *arguments = sys.argv[1:]
    with open(module, "rb") as file:
        result = run(file.read(), name, arguments, int(memory))
    print(json.dumps(result), flush=True)
