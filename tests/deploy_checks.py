"""Checks of a compiled_model/ folder shared by the tests: two independent ELF readers
(binutils' readelf, pyelftools) agree with the runtime's, and a process that can import
only the runtime, NumPy and onnxruntime runs the folder."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from aipuc.runtime.loader import ELF
from aipuc.runtime.sim import isa
from aipuc.runtime.sim.elf import ElfFile

READELF = shutil.which("readelf")

RUNTIME_MODULES = {
    "aipuc",
    "aipuc.errors",
    "aipuc.hardware",
    "aipuc.numerics",
    "aipuc.runtime",
    "aipuc.runtime.kernels",
    "aipuc.runtime.loader",
}
"""What the runtime may import of aipuc, besides aipuc.runtime.sim."""
FORBIDDEN = ("xdsl", "pydantic", "onnx")


def check_readelf(path: Path, elf: ElfFile) -> str:
    """`readelf -h -S -s` reads the file without a warning and lists the runtime's sections
    and symbols; returns its output."""
    assert READELF is not None, "readelf (binutils) is not installed"
    result = subprocess.run(
        [READELF, "-h", "-S", "-s", "-W", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
    assert "warning" not in result.stdout.lower()
    assert re.search(r"Class:\s+ELF64", result.stdout)
    assert re.search(r"Data:\s+2's complement, little endian", result.stdout)
    assert re.search(r"Type:\s+EXEC", result.stdout)
    sections = {
        m.group(1): (int(m.group(2), 16), int(m.group(3), 16))
        for m in re.finditer(
            r"\]\s+(\.aipu\.\S+)\s+PROGBITS\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)",
            result.stdout,
        )
    }
    assert sections == {s.name: (s.address, len(s.data)) for s in elf.sections}
    symbols = {
        m.group(4): (int(m.group(1), 16), int(m.group(2), 0), m.group(3))
        for m in re.finditer(  # sizes of 100000 and more print in hex
            r"\d+: ([0-9a-f]+)\s+(0x[0-9a-f]+|\d+) (OBJECT|FUNC)\s+GLOBAL\s+DEFAULT\s+\S+ (\S+)",
            result.stdout,
        )
    }
    assert symbols == {s.name: (s.value, s.size, s.kind.name) for s in elf.symbols}
    return result.stdout


def check_pyelftools(path: Path, elf: ElfFile) -> None:
    """pyelftools reads the same sections (address, bytes) and symbols as the runtime."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as file:
        reference = ELFFile(file)
        assert reference.elfclass == 64 and reference.little_endian
        sections = {
            s.name: (s["sh_addr"], s.data())
            for s in reference.iter_sections()
            if s.name.startswith(".aipu.")
        }
        symbols = {
            s.name: (s["st_value"], s["st_size"])
            for s in reference.get_section_by_name(".symtab").iter_symbols()
            if s.name
        }
    assert sections == {s.name: (s.address, s.data) for s in elf.sections}
    assert symbols == {s.name: (s.value, s.size) for s in elf.symbols}


def check_elf_readers(compiled_model: Path) -> ElfFile:
    """model.elf of a compiled_model/ folder through readelf and pyelftools."""
    path = compiled_model / ELF
    elf = ElfFile.from_bytes(path.read_bytes())
    check_readelf(path, elf)
    check_pyelftools(path, elf)
    return elf


def check_instruction_sections(elf: ElfFile) -> int:
    """Every tasklist and program section decodes, and encodes back to its bytes; returns
    the number of records."""
    records = 0
    for section in elf.sections:
        if section.name.startswith((".aipu.tasklist.", ".aipu.boot.")):
            decoded = isa.decode(section.data)
            assert isa.encode_stream(decoded) == section.data, section.name
            records += len(decoded)
        elif section.name.startswith(".aipu.dpu_text."):
            words = isa.decode_program(section.data)
            assert isa.encode_micro_ops(words) == section.data, section.name
    return records


_RUNTIME_ONLY = textwrap.dedent(
    """
    import importlib.abc, sys

    ALLOWED, FORBIDDEN = {allowed!r}, {forbidden!r}

    class Guard(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            top = name.split(".")[0]
            simulator = name.startswith("aipuc.runtime.sim")
            forbidden = top in FORBIDDEN or (
                top == "aipuc" and name not in ALLOWED and not simulator
            )
            if forbidden:
                raise ImportError(f"the runtime imported {{name}}")
            return None

    sys.meta_path.insert(0, Guard())
    import numpy as np
    from aipuc.runtime.loader import load

    model = load(sys.argv[1])
    runs = np.load(sys.argv[2])
    count = len({{key.split("/")[0] for key in runs}})
    results = {{}}
    for run in range(count):
        prefix = f"{{run}}/"
        inputs = {{k[len(prefix):]: v for k, v in runs.items() if k.startswith(prefix)}}
        for name, value in model.run(inputs).items():
            results[prefix + name] = value
    np.savez(sys.argv[3], **results)
    print(" ".join(sorted(m for m in sys.modules if m.startswith("aipuc"))))
    """
)


def run_runtime_only(
    compiled_model: Path, samples: list[Mapping[str, np.ndarray]], scratch: Path
) -> tuple[list[dict[str, np.ndarray]], set[str]]:
    """Runs the folder on each sample in a subprocess that cannot import the compiler:
    the outputs per sample, and the aipuc modules the process imported."""
    runs = {
        f"{n}/{name}": value for n, sample in enumerate(samples) for name, value in sample.items()
    }
    np.savez(scratch / "inputs.npz", **runs)
    script = _RUNTIME_ONLY.format(allowed=sorted(RUNTIME_MODULES), forbidden=FORBIDDEN)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(compiled_model),
            str(scratch / "inputs.npz"),
            str(scratch / "outputs.npz"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    saved = dict(np.load(scratch / "outputs.npz"))
    outputs = [
        {key.split("/", 1)[1]: value for key, value in saved.items() if key.startswith(f"{n}/")}
        for n in range(len(samples))
    ]
    return outputs, set(result.stdout.split())


def assert_same_outputs(found: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray]):
    assert found.keys() == expected.keys()
    for name, value in expected.items():
        assert found[name].dtype == value.dtype, name
        np.testing.assert_array_equal(found[name], value, err_msg=name)
