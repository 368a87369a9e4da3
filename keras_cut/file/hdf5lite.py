"""Index the HDF5 files Keras writes, in pure Python: groups, datasets' shapes and dtypes, and
the string attributes of groups. No h5py, no NumPy (their import is most of `inspect`'s
start-up), and one small read per object.

Only the subset Keras' `model.weights.h5` uses (through h5py's defaults) is read: superblock
version 0 or 1, version-1 object headers, groups as symbol tables (v1 B-tree and local heap),
contiguous or compact datasets of IEEE floats and little-endian integers, attributes holding
strings. Anything else raises `Unsupported`, and the caller reads the file with h5py instead,
whose checks (links, external storage, virtual datasets, compression bombs) then apply; the
checks that apply to this subset (soft links, more bytes declared than stored, nesting and
object limits) are made here, with the same messages.

Layout: the HDF5 file format specification, version 2 ("Disk Format: Level 0-2"), sections
II.A (superblock), III.A.1 (v1 B-trees), III.B-C (symbol table nodes and entries), III.D
(local heaps), III.E (global heap) and IV.A (v1 object headers and their messages).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

SIGNATURE = b"\x89HDF\r\n\x1a\n"
UNDEFINED = 0xFFFFFFFFFFFFFFFF

# message types (IV.A.2)
NIL, DATASPACE, LINK_INFO, DATATYPE, FILL_OLD, FILL, LINK, EXTERNAL, LAYOUT = range(9)
GROUP_INFO, FILTERS, ATTRIBUTE, COMMENT, MTIME_OLD, SHARED_TABLE = 10, 11, 12, 13, 14, 15
CONTINUATION, SYMBOL_TABLE, MTIME, BTREE_K, DRIVER, ATTRIBUTE_INFO, REFCOUNT = range(16, 23)
IGNORED = {NIL, FILL_OLD, FILL, COMMENT, MTIME_OLD, MTIME, BTREE_K, REFCOUNT}

# IEEE formats h5py writes for NumPy's floats: size -> (exponent location, exponent size,
# mantissa location, mantissa size, exponent bias)
IEEE = {2: (10, 5, 0, 10, 15), 4: (23, 8, 0, 23, 127), 8: (52, 11, 0, 52, 1023)}


BLOCK = 4096  # bytes read at once
MAX_NAME = 4096  # bytes in one link name (Keras' are a few dozen)


class Unsupported(Exception):
    """Outside the subset this reader handles: read the file with h5py."""


@dataclass
class Index:
    datasets: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)
    # string attributes of groups ("layers/dense/vars" -> {"name": "fc1"})
    attrs: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class _Object:
    kind: str  # "group", "dataset" or "other"
    btree: int = 0
    heap: int = 0
    shape: tuple[int, ...] = ()
    dtype: str = ""
    itemsize: int = 0
    stored: int = 0  # bytes the file holds for the data
    address: int = UNDEFINED
    attrs: dict[str, str] = field(default_factory=dict)
    extent_kept: bool = False  # its data extent is in _Reader.extents (one object, many links)


Read = Callable[[int, int], bytes]  # (absolute offset, size) -> bytes


def scan(read: Read, size: int, limits: tuple[int, int], unsafe: Callable[[str], Exception],
         check_bytes: Callable[[str, tuple[int, ...], int, int], None]) -> Index:
    """Every group, dataset and group string attribute of the HDF5 file of `size` bytes that
    `read` returns bytes of. `limits`: (most objects, deepest nesting); `unsafe(message)`
    makes the error for a hostile file; `check_bytes(path, shape, itemsize, stored)` refuses
    datasets declaring far more bytes than they store."""
    try:
        return _Reader(read, size, limits, unsafe, check_bytes).run()
    except (struct.error, IndexError, ValueError, OverflowError, RecursionError,
            MemoryError) as exc:
        # truncated or inconsistent metadata: h5py (and its error messages) decide
        raise Unsupported(f"malformed metadata ({exc})") from None


class _Reader:
    def __init__(self, read: Read, size: int, limits: tuple[int, int],
                 unsafe: Callable[[str], Exception],
                 check_bytes: Callable[[str, tuple[int, ...], int, int], None]):
        self._read, self.size = read, size
        self.max_objects, self.max_depth = limits
        self.unsafe, self.check_bytes = unsafe, check_bytes
        self.seen = 0
        self.held = 0  # bytes of heaps kept
        self.objects: dict[int, _Object] = {}
        self.symbol_nodes: set[int] = set()
        self.block: tuple[int, bytes] = (0, b"")
        self.index = Index()
        self.heaps: dict[int, bytes] = {}
        self.global_heaps: dict[int, dict[int, bytes]] = {}
        self.extents: list[tuple[int, int, str]] = []  # each dataset's data: start, end, path

    # --- bytes ------------------------------------------------------------------------------

    def read(self, address: int, count: int) -> bytes:
        """`count` bytes at a file address (relative to the superblock's base).

        Metadata comes in small pieces, mostly near each other (an object header, then its
        continuation; a B-tree node, then its symbol node): one read of a 4 KB block serves
        several of them."""
        start = self.base + address
        if address == UNDEFINED or address < 0 or start + count > self.size:
            raise Unsupported(f"address {address} outside the file")
        at, block = self.block
        if at <= start and start + count <= at + len(block):
            return block[start - at:start - at + count]
        block = self._read(start, min(max(count, BLOCK), self.size - start))
        if len(block) < count:
            raise Unsupported("short read")
        self.block = (start, block)
        return block[:count]

    # --- superblock -------------------------------------------------------------------------

    def run(self) -> Index:
        self.base = self._find_superblock()
        head = self._read(self.base, 96)
        version = head[8]
        if version not in (0, 1) or head[13] != 8 or head[14] != 8:
            raise Unsupported(f"superblock version {version}")
        # Addresses count from the superblock, wherever it is found: the base address field
        # says where it sat in the file it was written as (512 when keras-cut wrote it after
        # a user block holding the zip header), and readers of the bare image, HDF5's own
        # included, count from the signature they found.
        self.leaf_k, self.internal_k = struct.unpack_from("<HH", head, 16)
        at = 24 if version == 0 else 28
        root = struct.unpack_from("<Q", head, at + 32 + 8)[0]  # the root entry's header
        self._group(root, "", 0)
        self._check_extents()
        return self.index

    def _check_extents(self) -> None:
        """Two datasets never share bytes in a file HDF5 wrote: where they do, what one array
        holds depends on the other (a crafted or damaged file), and a copy of either is not
        what it says it is."""
        reach, owner = 0, ""
        for start, end, path in sorted(self.extents):
            if start < reach:
                raise self.unsafe(f"arrays {owner!r} and {path!r} share bytes in the weight "
                                  "file; it is damaged or crafted")
            if end > reach:
                reach, owner = end, path

    def _find_superblock(self) -> int:
        offset = 0
        while offset + 8 <= self.size:
            if self._read(offset, 8) == SIGNATURE:
                return offset
            offset = 512 if offset == 0 else offset * 2
        raise Unsupported("no superblock")

    # --- groups -----------------------------------------------------------------------------

    def _group(self, header: int, prefix: str, depth: int) -> None:
        if depth > self.max_depth:
            raise self.unsafe(f"HDF5 groups nest deeper than {self.max_depth}")
        group = self._object(header)
        if group.kind != "group":
            raise Unsupported("the root is not a group")
        heap = self._local_heap(group.heap)
        for name, child, cache in self._symbols(group.btree, heap):
            full = f"{prefix}{name}"
            if cache == 2:
                raise self.unsafe(f"HDF5 soft link at {full!r}; refusing to follow it")
            obj = self._object(child)
            if obj.kind == "group":
                self.index.groups.add(full)
                if obj.attrs:
                    self.index.attrs[full] = obj.attrs
                self._group(child, full + "/", depth + 1)
            elif obj.kind == "dataset":
                self.index.datasets[full] = self._dataset(full, obj)

    def _symbols(self, btree: int, heap: bytes) -> list[tuple[str, int, int]]:
        """(name, object header address, cache type) of every entry of a group's B-tree,
        each counted against the object limit as it is read (a hostile tree can name one
        node many times)."""
        found: list[tuple[str, int, int]] = []
        todo, visited = [btree], set()
        while todo:
            node = todo.pop()
            if node in visited or node in self.symbol_nodes:
                raise Unsupported("a B-tree or symbol table node twice")
            visited.add(node)
            head = self.read(node, 24)
            if head[:4] != b"TREE" or head[4] != 0:
                raise Unsupported("not a group B-tree node")
            level, used = head[5], struct.unpack_from("<H", head, 6)[0]
            if used > 2 * self.internal_k:
                raise Unsupported("a B-tree node fuller than the file's K allows")
            body = self.read(node + 24, 8 + used * 16)
            children = [struct.unpack_from("<Q", body, 8 + 16 * i)[0] for i in range(used)]
            if level > 0:
                todo.extend(reversed(children))
                continue
            for snod in children:
                if snod in self.symbol_nodes:
                    raise Unsupported("a symbol table node twice")
                self.symbol_nodes.add(snod)
                found.extend(self._symbol_node(snod, heap))
        return found

    def _symbol_node(self, address: int, heap: bytes) -> list[tuple[str, int, int]]:
        head = self.read(address, 8)
        if head[:4] != b"SNOD" or head[4] != 1:
            raise Unsupported("not a symbol table node")
        count = struct.unpack_from("<H", head, 6)[0]
        if count > 2 * self.leaf_k:
            raise Unsupported("a symbol table node fuller than the file's K allows")
        body = self.read(address + 8, 40 * count)
        entries = []
        for i in range(count):
            self.seen += 1
            if self.seen > self.max_objects:
                raise self.unsafe("the HDF5 file has too many objects")
            name_at, header, cache = struct.unpack_from("<QQI", body, 40 * i)
            end = heap.find(b"\0", name_at, name_at + MAX_NAME + 1)
            if end < 0:
                raise Unsupported("a name outside the local heap, or too long")
            raw = heap[name_at:end]
            if not raw or raw == b"." or b"/" in raw:
                raise Unsupported("a link name HDF5 would not store")
            entries.append((raw.decode("utf-8", "surrogateescape"), header, cache))
        return entries

    def _local_heap(self, address: int) -> bytes:
        if address not in self.heaps:
            head = self.read(address, 32)
            if head[:4] != b"HEAP" or head[4] != 0:
                raise Unsupported("not a local heap")
            size, _, data = struct.unpack_from("<QQQ", head, 8)
            self._hold(size)
            self.heaps[address] = self.read(data, size)
        return self.heaps[address]

    def _hold(self, count: int) -> None:
        """Heaps kept in memory add up to at most the file's size: several heap headers
        pointing at one range of a hostile file would otherwise multiply it."""
        self.held += count
        if self.held > self.size:
            raise Unsupported("heaps larger than the file")

    # --- object headers ---------------------------------------------------------------------

    def _object(self, address: int) -> _Object:
        """An object header, parsed once (many links may name it). Every message of every
        chunk is read, as HDF5 reads them: one the declared count leaves out still counts."""
        if address in self.objects:
            return self.objects[address]
        head = self.read(address, 16)
        if head[0] != 1:
            raise Unsupported("an object header other than version 1")
        messages, _, size = struct.unpack_from("<HII", head, 2)
        obj = _Object("other")
        found: dict[int, bytes] = {}
        if self._messages(address + 16, size, obj, found) != messages:
            raise Unsupported("an object header whose message count is not its messages")
        _describe(obj, found)
        self.objects[address] = obj
        return obj

    def _messages(self, start: int, size: int, obj: _Object, found: dict[int, bytes]) -> int:
        """Read every message of a header's chunks (following continuations); attributes go
        to `obj`, the structural messages to `found`. Returns how many messages there were."""
        blocks, done = [(start, size)], 0
        seen: set[tuple[int, int]] = set()
        while blocks:
            start, length = blocks.pop(0)
            if (start, length) in seen or length > 1 << 24 or len(seen) > 64:
                raise Unsupported("a header continuation loop")
            seen.add((start, length))
            block = self.read(start, length)
            at = 0
            while at + 8 <= length:
                kind, msize, flags = struct.unpack_from("<HHB", block, at)
                if at + 8 + msize > length:
                    raise Unsupported("a message past its chunk")
                data = block[at + 8:at + 8 + msize]
                at += 8 + msize
                done += 1
                if flags & 0x02:  # stored elsewhere (a shared datatype)
                    raise Unsupported("a shared message")
                if kind == CONTINUATION:
                    blocks.append(struct.unpack_from("<QQ", data))
                else:
                    self._message(kind, data, obj, found)
        return done

    def _message(self, kind: int, data: bytes, obj: _Object, found: dict[int, bytes]) -> None:
        if kind == ATTRIBUTE:
            self._attribute(data, obj.attrs)
        elif kind == ATTRIBUTE_INFO:
            _attribute_info(data)
        elif kind in (SYMBOL_TABLE, DATASPACE, DATATYPE, LAYOUT):
            if kind in found:
                raise Unsupported(f"message type {kind} twice")
            found[kind] = data
        elif kind not in IGNORED:  # external files, filters, links, anything newer
            raise Unsupported(f"message type {kind}")

    def _dataset(self, path: str, obj: _Object) -> tuple[tuple[int, ...], str]:
        dtype = obj.dtype
        if obj.itemsize == 2 and obj.attrs.get("dtype") == "bfloat16":
            dtype = "bfloat16"  # Keras' own marker: 2-byte data holding bfloat16
        elif not dtype:
            raise Unsupported(f"dataset {path!r} has a type this reader does not map")
        if obj.address != UNDEFINED and obj.stored and (
                self.base + obj.address + obj.stored > self.size):
            raise Unsupported("data outside the file")
        if obj.address != UNDEFINED and obj.stored and not obj.extent_kept:
            obj.extent_kept = True
            self.extents.append((obj.address, obj.address + obj.stored, path))
        self.check_bytes(path, obj.shape, obj.itemsize, obj.stored)
        return obj.shape, dtype

    # --- attributes -------------------------------------------------------------------------

    def _attribute(self, data: bytes, attrs: dict[str, str]) -> None:
        """String attributes only (Keras writes a vars group's layer name); others are
        skipped, as nothing else of an attribute matters to keras-cut."""
        version = data[0]
        name_size, type_size, space_size = struct.unpack_from("<HHH", data, 2)
        if version == 1:
            at = 8
            name = data[at:at + name_size]
            at += _pad8(name_size)
            dtype = data[at:at + type_size]
            at += _pad8(type_size)
            space = data[at:at + space_size]
            at += _pad8(space_size)
        elif version in (2, 3):
            if data[1] & 0x03:  # its datatype or dataspace is shared: stored elsewhere
                raise Unsupported("an attribute with a shared datatype or dataspace")
            at = 8 if version == 2 else 9
            name = data[at:at + name_size]
            dtype = data[at + name_size:at + name_size + type_size]
            space = data[at + name_size + type_size:at + name_size + type_size + space_size]
            at += name_size + type_size + space_size
        else:
            raise Unsupported(f"attribute message version {version}")
        key = name.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        try:
            shape = _dataspace(space)
        except Unsupported:
            return
        if shape != ():
            return
        value = self._string(dtype, data[at:])
        if value is not None:
            attrs[key] = value

    def _string(self, dtype: bytes, value: bytes) -> str | None:
        cls = dtype[0] & 0x0F
        if cls == 3:  # fixed-length string: NumPy drops trailing NULs only
            size = struct.unpack_from("<I", dtype, 4)[0]
            text = value[:size].rstrip(b"\0")
            if dtype[1] & 0x0F == 2 or b"\0" in text:  # space-padded, or NULs inside
                raise Unsupported("a fixed-length string h5py reads its own way")
            return text.decode("utf-8", "replace")
        if cls == 9 and (dtype[1] & 0x0F) == 1:  # variable-length string: in the global heap
            length, collection, index = struct.unpack_from("<IQI", value)
            return self._global(collection, index)[:length].decode("utf-8", "replace")
        return None

    def _global(self, collection: int, index: int) -> bytes:
        if collection not in self.global_heaps:
            head = self.read(collection, 16)
            if head[:4] != b"GCOL" or head[4] != 1:
                raise Unsupported("not a global heap collection")
            size = struct.unpack_from("<Q", head, 8)[0]
            body = self.read(collection, size)
            objects, at = {}, 16
            while at + 16 <= size:
                number, _, _, length = struct.unpack_from("<HHIQ", body, at)
                if number == 0:  # free space: the rest of the collection
                    break
                objects[number] = body[at + 16:at + 16 + length]
                at += 16 + _pad8(length)
            self.global_heaps[collection] = objects
        try:
            return self.global_heaps[collection][index]
        except KeyError:
            raise Unsupported("a global heap object that is not there") from None


def _pad8(n: int) -> int:
    return (n + 7) & ~7


def _dataspace(data: bytes) -> tuple[int, ...]:
    version, rank, flags = data[0], data[1], data[2]
    if version == 1:
        at = 8
    elif version == 2:
        if data[3] == 2:  # null dataspace: no data
            raise Unsupported("a null dataspace")
        at = 4
    else:
        raise Unsupported(f"dataspace version {version}")
    if flags & 0x02:
        raise Unsupported("a permuted dataspace")
    return tuple(struct.unpack_from(f"<{rank}Q", data, at)) if rank else ()


def _datatype(data: bytes) -> tuple[str, int]:
    """NumPy's name for the type (as h5py names it), and the size of one element."""
    cls, bits = data[0] & 0x0F, data[1] | data[2] << 8 | data[3] << 16
    size = struct.unpack_from("<I", data, 4)[0]
    if cls == 0:  # fixed point: byte order bit 0 (0 = little), signed bit 3
        offset, precision = struct.unpack_from("<HH", data, 8)
        if bits & 0x01 or offset != 0 or precision != 8 * size or size not in (1, 2, 4, 8):
            raise Unsupported("an integer type NumPy would not name plainly")
        return ("int" if bits & 0x08 else "uint") + str(8 * size), size
    if cls == 1:  # floating point, IEEE little-endian only
        offset, precision, exp_at, exp_size, man_at, man_size, bias = struct.unpack_from(
            "<HHBBBBI", data, 8)
        little = not bits & 0x01 and not bits & 0x40
        sign_at = bits >> 8 & 0xFF
        if not little or offset != 0 or precision != 8 * size or sign_at != 8 * size - 1 or \
                IEEE.get(size) != (exp_at, exp_size, man_at, man_size, bias):
            raise Unsupported("a float type that is not IEEE little-endian")
        return "float" + str(8 * size), size
    if cls == 5:  # opaque: Keras' bfloat16 (told apart by the dataset's "dtype" attribute)
        return "", size
    raise Unsupported(f"datatype class {cls}")


def _layout(data: bytes) -> tuple[int, int]:
    """(bytes stored, address) of a dataset's data."""
    version, layout = data[0], data[1]
    if version != 3:
        raise Unsupported(f"layout message version {version}")
    if layout == 1:  # contiguous
        address, size = struct.unpack_from("<QQ", data, 2)
        return (0 if address == UNDEFINED else size), address
    if layout == 0:  # compact: the data is in the header
        return struct.unpack_from("<H", data, 2)[0], UNDEFINED
    raise Unsupported(f"layout class {layout}")  # chunked (compression), virtual


def _attribute_info(data: bytes) -> None:
    """Attributes in dense storage (a fractal heap) are not read here."""
    flags = data[1]
    at = 2 + (2 if flags & 0x01 else 0)
    heap = struct.unpack_from("<Q", data, at)[0]
    if heap != UNDEFINED:
        raise Unsupported("dense attribute storage")


def _describe(obj: _Object, found: dict[int, bytes]) -> None:
    """A group (symbol table) or a dataset (dataspace, datatype and layout), never both."""
    dataset_parts = {DATASPACE, DATATYPE, LAYOUT} & set(found)
    if SYMBOL_TABLE in found:
        if dataset_parts:
            raise Unsupported("a group with dataset messages")
        obj.kind = "group"
        obj.btree, obj.heap = struct.unpack_from("<QQ", found[SYMBOL_TABLE])
    elif dataset_parts:
        if dataset_parts != {DATASPACE, DATATYPE, LAYOUT}:
            raise Unsupported("a dataset without its dataspace, datatype or layout")
        obj.kind = "dataset"
        obj.shape = _dataspace(found[DATASPACE])
        obj.dtype, obj.itemsize = _datatype(found[DATATYPE])
        obj.stored, obj.address = _layout(found[LAYOUT])
