"""Where a failing submodel first departs from its parent: both models run eagerly on the
failing batch, every layer call compared."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_cut.core.address import TensorAddress
from keras_cut.model.flatgraph import FlatGraph
from keras_cut.verify.comparison import Tolerances, agree
from keras_cut.verify.correspondence import Correspondence, match_calls
from keras_cut.verify.execution import Failure
from keras_cut.verify.report import Divergence


def first_divergence(parent_model: Any, sub_model: Any, flat: FlatGraph,
                      sub_flat: FlatGraph, links: Correspondence, failure: Failure,
                      tol: Tolerances) -> Divergence:
    """Run both models eagerly on the failing batch, recording every layer call, and compare
    each kept call with the parent call it stands for, producers first."""
    from keras_cut.backend.keras import running

    number, batch, feed = failure
    mine = running.walk(sub_model, feed)
    theirs = running.walk(parent_model, batch)
    result = Divergence(batch=number, compared=0)
    for match in match_calls(flat, sub_flat, links):
        if match.problem:
            result.layer = sub_flat.label(match.node)
            result.parent_layer = flat.label(match.parent) if match.parent else \
                links.parent_path(sub_flat.path(match.node))
            result.problem = match.problem
            return result
        for sub_t, parent_t in match.pairs:
            a, b = mine.get(sub_t), theirs.get(parent_t)
            if a is None or b is None:
                continue
            result.compared += 1
            a, b = np.asarray(a), np.asarray(b)
            ok, err = agree(a, b, tol.global_atol, tol.global_rtol)
            if not ok:
                result.layer = sub_flat.label(match.node) + _index(sub_flat, sub_t)
                result.parent_layer = flat.label(parent_t.node) + _index(flat, parent_t)
                if a.shape != b.shape:
                    result.problem = f"shape {a.shape[1:]} vs the parent's {b.shape[1:]}"
                else:
                    result.max_abs_error = err
                return result
    result.problem = ("every kept layer agrees with the parent on this batch; the outputs are "
                      "taken from other tensors than the parent's")
    return result


def _index(flat: FlatGraph, t: TensorAddress) -> str:
    return f"[{t.index}]" if len(flat.outputs_of(t.node)) > 1 else ""
