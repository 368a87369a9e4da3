"""Which `keras.layers` classes keras-cut has an entry for: the README lists those without one,
and this test keeps that list equal to what the installed Keras exports."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from keras_cut.layers import known

README = Path(__file__).resolve().parents[2] / "README.md"

pytestmark = pytest.mark.heavy  # imports Keras


def _keras_layer_classes() -> set[str]:
    import keras

    return {name for name, obj in vars(keras.layers).items()
            if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer)
            and name == obj.__name__}


def _readme_list() -> tuple[set[str], str]:
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- classes-without-entry -->\n(.*?)<!-- /classes-without-entry -->",
                      text, re.S)
    assert block, "README.md lost its list of classes without an entry"
    return set(block.group(1).split()), text


def test_the_readme_lists_exactly_the_classes_without_an_entry():
    exported = _keras_layer_classes()
    without = {name for name in exported if name not in known.KINDS}
    listed, text = _readme_list()
    assert sorted(without - listed) == [], "new Keras classes without an entry: list or add them"
    assert sorted(listed - without) == [], "these now have an entry: take them off the list"
    counts = f"{len(exported) - len(without)} of the {len(exported)} classes"
    assert counts in text, f"README.md should say {counts!r}"


def test_every_entry_names_a_class_someone_saves():
    """An entry for a misspelled class would never be used: every name is a Keras class, a
    keras_hub class, or a tf.keras 2 one keras-cut translates."""
    elsewhere = {
        "ReversibleEmbedding", "TokenAndPositionEmbedding",  # keras_hub
        "LocallyConnected1D", "LocallyConnected2D", "ThresholdedReLU",  # tf.keras 2 only
        "TFOpLambda", "SlicingOpLambda",
        # Keras operations (keras.ops) a functional graph saves as nodes of their own
        "Absolute", "Cast", "Exp", "Log", "Max", "Mean", "Min", "Power", "Relu", "Relu6",
        "Sigmoid", "Sqrt", "Square", "Sum", "Tanh", "TrueDivide",
    }
    unknown = sorted(set(known.KINDS) - _keras_layer_classes() - elsewhere)
    assert unknown == []


def test_the_list_check_fails_on_a_class_left_off(monkeypatch):
    monkeypatch.delitem(known.KINDS, "Dense")
    with pytest.raises(AssertionError, match="new Keras classes without an entry"):
        test_the_readme_lists_exactly_the_classes_without_an_entry()
