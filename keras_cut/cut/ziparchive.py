"""Write a `.keras` zip around an HDF5 file written in place, with no copy of its bytes.

Copying a finished weights file into a zip (what `zipfile.ZipFile.write` does) reads and
writes every byte again: on a 500 MB cut that is most of the time. Instead the HDF5 file is
created with a user block (HDF5's reserved, ignored space at the start of a file, 512 bytes
here); the zip's local header for `model.weights.h5` is written into that space, so the member's
data is the HDF5 file itself. HDF5 finds its superblock at offset 0 of the member (and at 512 of
the whole file) and addresses everything relative to it, so both read it. The remaining small
members, the central directory and the end record are appended after the HDF5 data.

The layout follows PKWARE's APPNOTE (local header, central directory, end record; ZIP64 records
when a size or offset does not fit 32 bits), as Python's `zipfile` writes and reads it:
members are stored (not compressed), as Keras stores them.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

USERBLOCK = 512  # HDF5 user block sizes are powers of two from 512
LIMIT = 0xFFFFFFFF
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory header, 46 bytes
_END = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")  # ZIP64 end of central directory record, 56 bytes
_LOCATOR64 = struct.Struct("<4sLQL")  # ZIP64 end of central directory locator, 20 bytes
_PAD_ID = 0xD935  # an alignment-padding extra field, as Android's zipalign writes
_ZIP64_ID = 0x0001


@dataclass
class _Member:
    name: bytes
    offset: int
    crc: int
    size: int
    zip64: bool


def _dos_time(now: float | None = None) -> tuple[int, int]:
    t = time.localtime(now)
    dos_time = t.tm_hour << 11 | t.tm_min << 5 | t.tm_sec // 2
    dos_date = max(t.tm_year - 1980, 0) << 9 | t.tm_mon << 5 | t.tm_mday
    return dos_time, dos_date


def _local_header(member: _Member, when: tuple[int, int], pad_to: int | None = None) -> bytes:
    extra = b""
    size = member.size
    if member.zip64:
        extra = struct.pack("<2H2Q", _ZIP64_ID, 16, member.size, member.size)
        size = LIMIT
    if pad_to is not None:
        room = pad_to - _LOCAL.size - len(member.name) - len(extra)
        if room < 4:
            raise ValueError(f"no room for a zip header of {member.name!r} in {pad_to} bytes")
        extra += struct.pack("<2H", _PAD_ID, room - 4) + b"\0" * (room - 4)
    version = 45 if member.zip64 else 20
    header = _LOCAL.pack(b"PK\x03\x04", version, 0, 0, when[0], when[1], member.crc, size,
                         size, len(member.name), len(extra))
    return header + member.name + extra


def _crc32(path: Path, start: int, chunk: int = 1 << 22) -> tuple[int, int]:
    """CRC-32 and length of `path` from `start` to its end, read in chunks."""
    crc, size = 0, 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        while True:
            count = fh.readinto(buffer)
            if not count:
                break
            crc = zlib.crc32(view[:count], crc)
            size += count
    return crc, size


def _flushed_crc32(path: Path) -> tuple[int, int]:
    """The HDF5 data's CRC-32 and size, while the OS writes it to disk in another thread.

    The atomic write fsyncs the finished file; flushing the bulk here, while the checksum is
    read back from the page cache, overlaps the two (on a 500 MB cut they take 0.2 s each)."""
    errors: list[OSError] = []

    def flush() -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            errors.append(exc)

    fd = os.open(path, os.O_RDONLY)
    try:
        flusher = threading.Thread(target=flush, daemon=True)
        flusher.start()
        try:
            result = _crc32(path, USERBLOCK)
        finally:
            flusher.join()
    finally:
        os.close(fd)
    if errors:
        raise errors[0]
    return result


def finish_keras_zip(path: Path, h5_name: str, members: list[tuple[str, bytes]],
                     force_zip64: bool = False, now: float | None = None) -> None:
    """Turn `path` — an HDF5 file created with `userblock_size=USERBLOCK` and closed — into a
    zip whose member `h5_name` is that HDF5 file, followed by `members` (name, bytes)."""
    when = _dos_time(now)
    crc, size = _flushed_crc32(path)
    first = _Member(h5_name.encode(), 0, crc, size, force_zip64 or size >= LIMIT)
    written = [first]
    with open(path, "r+b") as fh:
        fh.write(_local_header(first, when, pad_to=USERBLOCK))
        fh.seek(0, os.SEEK_END)
        for name, data in members:
            member = _Member(name.encode(), fh.tell(), zlib.crc32(data), len(data),
                             force_zip64 or len(data) >= LIMIT)
            fh.write(_local_header(member, when))
            fh.write(data)
            written.append(member)
        start = fh.tell()
        for member in written:
            fh.write(_central_header(member, when, force_zip64))
        end = fh.tell()
        needs64 = force_zip64 or start >= LIMIT or end - start >= LIMIT
        if needs64:
            fh.write(_END64.pack(b"PK\x06\x06", _END64.size - 12, 45, 45, 0, 0,
                                 len(written), len(written), end - start, start))
            fh.write(_LOCATOR64.pack(b"PK\x06\x07", 0, end, 1))
        fh.write(_END.pack(b"PK\x05\x06", 0, 0, len(written), len(written),
                           min(end - start, LIMIT), min(start, LIMIT), 0))


def _central_header(member: _Member, when: tuple[int, int], force_zip64: bool) -> bytes:
    fields: list[int] = []
    size = offset = None
    if member.zip64:
        fields += [member.size, member.size]
        size = LIMIT
    if force_zip64 or member.offset >= LIMIT:
        fields.append(member.offset)
        offset = LIMIT
    extra = struct.pack(f"<2H{len(fields)}Q", _ZIP64_ID, 8 * len(fields), *fields) if fields \
        else b""
    version = 45 if fields else 20
    size = member.size if size is None else size
    offset = member.offset if offset is None else offset
    # made by: Unix (3), spec 2.0/4.5; external attributes: a regular file, rw-r--r--
    header = _CENTRAL.pack(b"PK\x01\x02", 3 << 8 | version, version, 0, 0, when[0], when[1],
                           member.crc, size, size, len(member.name), len(extra), 0, 0, 0,
                           0o100644 << 16, offset)
    return header + member.name + extra
