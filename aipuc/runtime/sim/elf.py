"""ELF64 files: the container of a compiled model (`compiled_model/model.elf`).

A plain ELF64 little-endian executable (System V ABI, no machine: `EM_NONE`), written and
read with NumPy structured dtypes laid out as in <elf.h>. Sections are `SHT_PROGBITS` with
`SHF_ALLOC` at their device address (`sh_addr`); the loader copies each one there. A
symbol table names the IO buffers (absolute `STT_OBJECT` symbols: address and size) and
the entry of each segment (`STT_FUNC`). `readelf -h -S -s` and pyelftools read it; the
tests check that they see what `read` sees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

import numpy as np

EHDR = np.dtype(
    [
        ("e_ident", "u1", 16),
        ("e_type", "<u2"),
        ("e_machine", "<u2"),
        ("e_version", "<u4"),
        ("e_entry", "<u8"),
        ("e_phoff", "<u8"),
        ("e_shoff", "<u8"),
        ("e_flags", "<u4"),
        ("e_ehsize", "<u2"),
        ("e_phentsize", "<u2"),
        ("e_phnum", "<u2"),
        ("e_shentsize", "<u2"),
        ("e_shnum", "<u2"),
        ("e_shstrndx", "<u2"),
    ]
)
SHDR = np.dtype(
    [
        ("sh_name", "<u4"),
        ("sh_type", "<u4"),
        ("sh_flags", "<u8"),
        ("sh_addr", "<u8"),
        ("sh_offset", "<u8"),
        ("sh_size", "<u8"),
        ("sh_link", "<u4"),
        ("sh_info", "<u4"),
        ("sh_addralign", "<u8"),
        ("sh_entsize", "<u8"),
    ]
)
SYM = np.dtype(
    [
        ("st_name", "<u4"),
        ("st_info", "u1"),
        ("st_other", "u1"),
        ("st_shndx", "<u2"),
        ("st_value", "<u8"),
        ("st_size", "<u8"),
    ]
)
MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV = 2, 1, 1, 0
ET_EXEC, EM_NONE = 2, 0
SHN_UNDEF, SHN_ABS = 0, 0xFFF1
STB_LOCAL, STB_GLOBAL = 0, 1


class SectionType(IntEnum):
    NULL = 0
    PROGBITS = 1
    SYMTAB = 2
    STRTAB = 3


class SectionFlag(IntFlag):
    WRITE = 0x1
    ALLOC = 0x2
    EXECINSTR = 0x4


class SymbolType(IntEnum):
    NOTYPE = 0
    OBJECT = 1
    FUNC = 2


class ElfError(ValueError):
    """The bytes are not an ELF64 file this runtime reads."""


@dataclass
class Section:
    name: str
    data: bytes
    address: int
    flags: SectionFlag = SectionFlag.ALLOC
    align: int = 64


@dataclass
class Symbol:
    name: str
    value: int
    size: int
    kind: SymbolType = SymbolType.OBJECT
    section: str | None = None
    """The section the symbol lies in, or None for an absolute address."""


@dataclass
class ElfFile:
    sections: list[Section] = field(default_factory=list)
    symbols: list[Symbol] = field(default_factory=list)
    entry: int = 0

    def section(self, name: str) -> Section:
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)

    def symbol(self, name: str) -> Symbol:
        for symbol in self.symbols:
            if symbol.name == name:
                return symbol
        raise KeyError(name)

    # ------------------------------------------------------------------ layout

    def offsets(self) -> list[int]:
        """File offsets of the sections' data (they depend on the sizes only)."""
        offsets, offset = [], EHDR.itemsize
        for section in self.sections:
            offset = _align(offset, section.align)
            offsets.append(offset)
            offset += len(section.data)
        return offsets

    def size(self) -> int:
        return len(self.to_bytes())

    # ------------------------------------------------------------------ writing

    def to_bytes(self) -> bytes:
        names = _Strings()
        symbol_names = _Strings()
        out = bytearray(EHDR.itemsize)
        headers = [np.zeros((), SHDR)]  # index 0: SHN_UNDEF
        index_of = {}
        for section, offset in zip(self.sections, self.offsets(), strict=True):
            out.extend(bytes(offset - len(out)))
            out.extend(section.data)
            header = np.zeros((), SHDR)
            header["sh_name"] = names.add(section.name)
            header["sh_type"] = SectionType.PROGBITS
            header["sh_flags"] = int(section.flags)
            header["sh_addr"] = section.address
            header["sh_offset"] = offset
            header["sh_size"] = len(section.data)
            header["sh_addralign"] = section.align
            index_of[section.name] = len(headers)
            headers.append(header)
        symtab = np.zeros(len(self.symbols) + 1, SYM)  # entry 0: the undefined symbol
        for row, symbol in zip(symtab[1:], self.symbols, strict=True):
            row["st_name"] = symbol_names.add(symbol.name)
            row["st_info"] = (STB_GLOBAL << 4) | int(symbol.kind)
            row["st_shndx"] = SHN_ABS if symbol.section is None else index_of[symbol.section]
            row["st_value"] = symbol.value
            row["st_size"] = symbol.size
        symtab_index = len(headers)
        strtab_index = symtab_index + 1
        shstrtab_index = symtab_index + 2
        tables = [
            (".symtab", SectionType.SYMTAB, symtab.tobytes(), 8, strtab_index, 1, SYM.itemsize),
            (".strtab", SectionType.STRTAB, symbol_names.data(), 1, 0, 0, 0),
        ]
        names.add(".symtab"), names.add(".strtab"), names.add(".shstrtab")
        tables.append((".shstrtab", SectionType.STRTAB, names.data(), 1, 0, 0, 0))
        for name, kind, data, align, link, info, entsize in tables:
            offset = _align(len(out), align)
            out.extend(bytes(offset - len(out)))
            out.extend(data)
            header = np.zeros((), SHDR)
            header["sh_name"] = names.offset(name)
            header["sh_type"] = kind
            header["sh_offset"] = offset
            header["sh_size"] = len(data)
            header["sh_link"] = link
            header["sh_info"] = info  # one past the last local symbol: only the null one
            header["sh_addralign"] = align
            header["sh_entsize"] = entsize
            headers.append(header)
        shoff = _align(len(out), 8)
        out.extend(bytes(shoff - len(out)))
        for header in headers:
            out.extend(header.tobytes())
        ehdr = np.zeros((), EHDR)
        ehdr["e_ident"][:4] = np.frombuffer(MAGIC, np.uint8)
        ehdr["e_ident"][4:8] = (ELFCLASS64, ELFDATA2LSB, EV_CURRENT, ELFOSABI_SYSV)
        ehdr["e_type"], ehdr["e_machine"], ehdr["e_version"] = ET_EXEC, EM_NONE, EV_CURRENT
        ehdr["e_entry"] = self.entry
        ehdr["e_shoff"] = shoff
        ehdr["e_ehsize"], ehdr["e_shentsize"] = EHDR.itemsize, SHDR.itemsize
        ehdr["e_shnum"] = len(headers)
        ehdr["e_shstrndx"] = shstrtab_index
        out[: EHDR.itemsize] = ehdr.tobytes()
        return bytes(out)

    # ------------------------------------------------------------------ reading

    @classmethod
    def from_bytes(cls, data: bytes) -> ElfFile:
        if len(data) < EHDR.itemsize or data[:4] != MAGIC:
            raise ElfError("not an ELF file (bad magic)")
        ehdr = np.frombuffer(data[: EHDR.itemsize], EHDR)[0]
        if tuple(ehdr["e_ident"][4:6]) != (ELFCLASS64, ELFDATA2LSB):
            raise ElfError("not a little-endian ELF64 file")
        count, shoff = int(ehdr["e_shnum"]), int(ehdr["e_shoff"])
        if int(ehdr["e_shentsize"]) != SHDR.itemsize or shoff + count * SHDR.itemsize > len(data):
            raise ElfError("the section header table lies outside the file")
        headers = np.frombuffer(data[shoff : shoff + count * SHDR.itemsize], SHDR)
        if int(ehdr["e_shstrndx"]) >= count:
            raise ElfError(f"the section name table {int(ehdr['e_shstrndx'])} is not a section")

        def body(header) -> bytes:
            start, size = int(header["sh_offset"]), int(header["sh_size"])
            if start + size > len(data):
                raise ElfError("a section lies outside the file")
            return data[start : start + size]

        shstr = body(headers[int(ehdr["e_shstrndx"])])
        elf = cls(entry=int(ehdr["e_entry"]))
        names = []
        for header in headers:
            names.append(_string(shstr, int(header["sh_name"])))
            if int(header["sh_type"]) == SectionType.PROGBITS:
                elf.sections.append(
                    Section(
                        names[-1],
                        body(header),
                        int(header["sh_addr"]),
                        SectionFlag(int(header["sh_flags"])),
                        int(header["sh_addralign"]),
                    )
                )
        for header in headers:
            if int(header["sh_type"]) != SectionType.SYMTAB:
                continue
            strings = body(headers[int(header["sh_link"])])
            for row in np.frombuffer(body(header), SYM)[1:]:
                shndx = int(row["st_shndx"])
                elf.symbols.append(
                    Symbol(
                        _string(strings, int(row["st_name"])),
                        int(row["st_value"]),
                        int(row["st_size"]),
                        SymbolType(int(row["st_info"]) & 0xF),
                        None if shndx == SHN_ABS else names[shndx],
                    )
                )
        return elf


def _align(value: int, alignment: int) -> int:
    return -(-value // max(alignment, 1)) * max(alignment, 1)


def _string(table: bytes, offset: int) -> str:
    end = table.index(b"\0", offset)
    return table[offset:end].decode("utf-8")


class _Strings:
    """A string table: NUL first, then each distinct name once."""

    def __init__(self) -> None:
        self._data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, name: str) -> int:
        if name not in self._offsets:
            self._offsets[name] = len(self._data)
            self._data.extend(name.encode("utf-8") + b"\0")
        return self._offsets[name]

    def offset(self, name: str) -> int:
        return self._offsets[name]

    def data(self) -> bytes:
        return bytes(self._data)
