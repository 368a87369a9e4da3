"""Where a tensor is, one type for every layer of keras-cut: the chain of nested-model calls it
runs inside (empty at the top level, and for a reference within one graph's config), the layer,
which of its calls, which output. The backend's recordings of a running model use it too.
"""

from __future__ import annotations

from dataclasses import dataclass

Context = tuple[tuple[str, int], ...]  # ((model layer name, call index), ...) from the top


@dataclass(frozen=True)
class CallAddress:
    """One call of one layer, at a place in the nesting."""

    context: Context
    layer: str
    call: int


@dataclass(frozen=True)
class TensorAddress:
    """One output of one call of a layer."""

    context: Context
    layer: str
    call: int = 0
    index: int = 0

    @property
    def node(self) -> CallAddress:
        """The call that produces it."""
        return CallAddress(self.context, self.layer, self.call)

    def at_top(self) -> TensorAddress:
        """The same call and output, addressed within its own graph (no context)."""
        return TensorAddress((), self.layer, self.call, self.index)
