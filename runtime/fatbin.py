"""Which GPUs a CUDA shared library has device code for: the SASS (cubin) and PTX entries of its ``.nv_fatbin``
ELF section, read in pure Python (no cuobjdump needed), and whether they cover a compute capability.

An engine's plugins run the library's kernels, so an engine built for a compute capability the library has no
code for would fail at its first enqueue; rrsr-build-engine checks this before building. CUDA's rules: a cubin for
``sm_XY`` runs on devices X.Z with Z >= Y (same major); PTX for ``compute_XY`` is JIT-compiled by the driver on any
device >= X.Y.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

_FATBIN_MAGIC = 0xBA55ED50
_KIND_PTX, _KIND_ELF = 1, 2


@dataclass
class DeviceCode:
    sass: list[str] = field(default_factory=list)     # "8.7", ... (sorted, unique)
    ptx: list[str] = field(default_factory=list)

    def covers(self, cc: str) -> str | None:
        """How a device of compute capability ``cc`` ("8.9") runs this code: "sass", "ptx" (JIT at load) or None."""
        major, minor = _split(cc)
        if any(m == major and n <= minor for m, n in map(_split, self.sass)):
            return "sass"
        if any((m, n) <= (major, minor) for m, n in map(_split, self.ptx)):
            return "ptx"
        return None

    def describe(self) -> str:
        return f"SASS {', '.join(self.sass) or 'none'}; PTX {', '.join(self.ptx) or 'none'}"


def _split(cc: str) -> tuple[int, int]:
    a, b = cc.split(".")
    return int(a), int(b)


def _arch(n: int) -> str:
    return f"{n // 10}.{n % 10}"


def _section(data: bytes, wanted: str) -> bytes | None:
    """The bytes of ELF64 little-endian section ``wanted``, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx][4]
    for name, _type, _flags, _addr, off, size in headers:
        end = data.index(b"\0", strtab + name)
        if data[strtab + name:end].decode(errors="replace") == wanted:
            return data[off:off + size]
    return None


def device_code(path) -> DeviceCode:
    """The SASS and PTX architectures embedded in the shared library at ``path`` (empty lists when it has no CUDA
    device code). ValueError when the file is not an ELF shared library or its fatbinary is malformed."""
    data = Path(path).read_bytes()
    try:
        sec = _section(data, ".nv_fatbin")
    except (ValueError, struct.error, IndexError) as e:
        raise ValueError(f"{path} is not a readable ELF shared library ({e})") from None
    sass, ptx = set(), set()
    pos = 0
    while sec is not None and pos + 16 <= len(sec):
        magic, _ver, hsize, fsize = struct.unpack_from("<IHHQ", sec, pos)
        if magic != _FATBIN_MAGIC:
            if not any(sec[pos:]):            # section padding
                break
            raise ValueError(f"{path}: unexpected data in .nv_fatbin at offset {pos}")
        p, end = pos + hsize, pos + hsize + fsize
        while p + 32 <= end:
            kind, _, ehsize, esize = struct.unpack_from("<HHIQ", sec, p)
            arch, = struct.unpack_from("<I", sec, p + 28)
            if kind == _KIND_ELF:
                sass.add(_arch(arch))
            elif kind == _KIND_PTX:
                ptx.add(_arch(arch))
            if ehsize == 0:
                raise ValueError(f"{path}: malformed fatbinary entry at offset {p}")
            p += ehsize + esize
        pos = end
    order = lambda s: sorted(s, key=_split)  # noqa: E731
    return DeviceCode(order(sass), order(ptx))
