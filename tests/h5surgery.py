"""Byte-level edits of HDF5 images (version-1 object headers, symbol tables): the hostile and
inconsistent files a reader must not be fooled by. Written for the review of hdf5lite."""

from __future__ import annotations

import io
import struct

import h5py


def header_addr(data: bytes, path: str) -> int:
    with h5py.File(io.BytesIO(bytes(data)), "r") as h5:
        return h5py.h5o.get_info(h5[path].id).addr


def messages(data: bytes, addr: int) -> tuple[list[tuple[int, int, bytes]], int, int]:
    """[(type, flags, body)] of a v1 object header's first chunk, its count and size."""
    version, _, count, _, size = struct.unpack_from("<BBHII", data, addr)
    assert version == 1
    at, end, out = addr + 16, addr + 16 + size, []
    while at + 8 <= end:
        kind, length, flags = struct.unpack_from("<HHB", data, at)
        out.append((kind, flags, bytes(data[at + 8:at + 8 + length])))
        at += 8 + length
    return out, count, size


def msg(kind: int, body: bytes, flags: int = 0) -> bytes:
    body = body + b"\0" * (-len(body) % 8)
    return struct.pack("<HHB3x", kind, len(body), flags) + body


def rewrite(data: bytearray, addr: int, msgs: list[tuple[int, int, bytes]]) -> None:
    """The header's first chunk holds `msgs` (a NIL fills the rest); its count covers them."""
    _, _, size = messages(data, addr)
    blob = b"".join(msg(kind, body, flags) for kind, flags, body in msgs)
    rest = size - len(blob)
    assert rest >= 0 and rest % 8 == 0
    count = len(msgs)
    if rest:
        blob += struct.pack("<HHB3x", 0, rest - 8, 0) + b"\0" * (rest - 8)
        count += 1
    data[addr + 16:addr + 16 + size] = blob
    struct.pack_into("<H", data, addr + 2, count)


def append_block(data: bytearray, blob: bytes) -> int:
    """Append `blob` to the image (superblock at 0) and return its address."""
    while len(data) % 8:
        data.append(0)
    addr = len(data)
    data += blob
    struct.pack_into("<Q", data, 40, len(data))  # the end-of-file address
    return addr


def hide_in_continuation(data: bytearray, path: str, kind: int) -> None:
    """Move `path`'s message of `kind` into a continuation chunk its header's message count
    does not cover (HDF5 reads every chunk; a reader that stops at the count misses it)."""
    addr = header_addr(data, path)
    msgs, _, _ = messages(data, addr)
    (moved,) = [m for m in msgs if m[0] == kind]
    chunk = msg(kind, moved[2], moved[1])
    at = append_block(data, chunk)
    rewrite(data, addr, [m for m in msgs if m[0] not in (0, kind)]
            + [(0x10, 0, struct.pack("<QQ", at, len(chunk)))])
