"""A submodel's input or output and the parent tensor it stands for: one type from the cut plan
to the written file's record, the cut result, the correspondence `verify` builds, golden files
and every report.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from keras_cut.core.address import TensorAddress
from keras_cut.layers.shapes import Shape


class Role(StrEnum):
    """What an endpoint is for the parent (the JSON key `kind` spells the value)."""

    PARENT_INPUT = "parent_input"  # an input of the parent, kept as it is
    CUT_INPUT = "cut_input"  # a layer's output the user cut at: a new input
    CROSSING = "crossing"  # a tensor from before the cut that a kept layer also reads
    OUTPUT = "output"  # an output of the submodel


@dataclass
class Endpoint:
    name: str  # the submodel's name for it: an input's InputLayer, an output's layer
    source: str  # the parent tensor as a user names it: "backbone/relu", "shared@1", "gru[1]"
    role: Role
    tensor: TensorAddress | None = None  # the parent tensor; a golden file keeps only `source`
    shape: Shape | None = None
    dtype: str | None = None

    @property
    def parent(self) -> TensorAddress:
        """The parent tensor (every endpoint but a golden file's knows it)."""
        if self.tensor is None:
            raise ValueError(f"endpoint {self.name!r} does not know its parent tensor")
        return self.tensor

    def to_dict(self) -> dict[str, Any]:
        """The cut report's entry."""
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "dtype": self.dtype, "source": self.source, "kind": self.role.value}

    def label(self) -> dict[str, Any]:
        """The verify report's entry: which parent tensor, by name."""
        return {"name": self.name, "source": self.source, "kind": self.role.value}

    def golden_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "kind": self.role.value,
                "shape": None if self.shape is None else list(self.shape), "dtype": self.dtype}

    def record(self) -> dict[str, Any]:
        """The entry in a cut's provenance record (`model/provenance.py`), which keeps the
        parent tensor exactly: the chain of calls down to its producer, and the output index."""
        entry: dict[str, Any] = {"name": self.name, "source": self.source}
        if self.role is not Role.OUTPUT:
            entry["kind"] = self.role.value
        if self.tensor is not None:
            entry["tensor"] = tensor_json(self.tensor)
        return entry

    @classmethod
    def from_golden(cls, entry: Any) -> Endpoint | None:
        """An endpoint of a golden file, or None when the entry is not well formed (untrusted)."""
        keys = {"name", "source", "kind", "shape", "dtype"}
        if not (isinstance(entry, dict) and set(entry) == keys
                and all(isinstance(entry[k], str) for k in ("name", "source", "kind", "dtype"))
                and entry["kind"] in set(Role)
                and isinstance(entry["shape"], list) and len(entry["shape"]) >= 1
                and all(d is None or _count(d) for d in entry["shape"])):
            return None
        return cls(entry["name"], entry["source"], Role(entry["kind"]), None,
                   tuple(entry["shape"]), entry["dtype"])


def tensor_json(t: TensorAddress) -> dict[str, Any]:
    """{"calls": [[model, call], ..., [layer, call]], "index": i} for a parent tensor."""
    return {"calls": [[name, call] for name, call in t.context] + [[t.layer, t.call]],
            "index": t.index}


def tensor_from_json(value: Any) -> TensorAddress | None:
    """The tensor a record names, or None when the entry is not well formed (untrusted data)."""
    if not isinstance(value, dict):
        return None
    calls, index = value.get("calls"), value.get("index")
    if not isinstance(calls, list) or not calls or not isinstance(index, int) or \
            not _count(index):
        return None
    pairs = []
    for item in calls:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and _count(item[1])):
            return None
        pairs.append((item[0], item[1]))
    (layer, call), context = pairs[-1], tuple(pairs[:-1])
    return TensorAddress(context, layer, call, index)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
