"""Reading one stored member of a `.keras` zip in place: positional reads of the zip's own file,
no decompression and no copy (Keras stores its members uncompressed)."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

ZIP_MAGIC = b"PK\x03\x04"  # a zip local file header

_PREADV = getattr(os, "preadv", None)


class _StoredMember(io.RawIOBase):
    """A read-only, seekable view of an uncompressed zip member, straight from the file.

    h5py seeks a lot; zipfile's own member objects make each backward seek re-read the member,
    which costs seconds on a 100 MB weight file. Keras stores weights uncompressed.
    """

    def __init__(self, path: Path, info: zipfile.ZipInfo):
        self._fh = open(path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        self._fh.seek(info.header_offset)
        header = self._fh.read(30)
        if len(header) != 30 or header[:4] != ZIP_MAGIC:
            self._fh.close()
            raise zipfile.BadZipFile(f"bad local header for {info.filename}")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        self._start = info.header_offset + 30 + name_len + extra_len
        self._size = info.file_size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._pos))
        if count == 0:
            return 0
        view = memoryview(buffer).cast("B")[:count]
        if _PREADV is not None:  # straight into HDF5's buffer: no seek, no copy
            done = _PREADV(self._fh.fileno(), [view], self._start + self._pos)
        else:
            self._fh.seek(self._start + self._pos)
            done = self._fh.readinto(view)
        self._pos += done
        return done

    def pread(self, offset: int, count: int) -> bytes:
        """`count` bytes at `offset` in the member (fewer at its end), without seeking."""
        count = max(0, min(count, self._size - offset))
        return os.pread(self._fh.fileno(), count, self._start + offset) if count else b""

    def close(self) -> None:
        self._fh.close()
        super().close()


def open_member(path: Path, zf: zipfile.ZipFile, name: str) -> Any:
    """A seekable reader for a zip member: a direct view when stored, zipfile's otherwise."""
    info = zf.getinfo(name)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        return _StoredMember(path, info)
    return zf.open(name)
