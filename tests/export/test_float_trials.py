"""`try_keep_float`'s loop, with the export replaced: one more layer each time, in the order
given, stopping at the first proven; a refusal is recorded and the next layer tried."""

from __future__ import annotations

from types import SimpleNamespace

from keras_cut.core.errors import ArtifactError
from keras_cut.export.exporting import try_keep_float


def fake_export(proven_with: set[str], refused: str | None = None):
    calls = []

    def export(layers, target):
        calls.append(list(layers))
        if refused in layers:
            raise ArtifactError(f"no operation named after {refused}")
        proven = proven_with <= set(layers)
        output = SimpleNamespace(cosine_similarity=0.999 if proven else 0.9)
        return SimpleNamespace(proven=proven, verify=SimpleNamespace(outputs=[output]))

    return export, calls


def test_one_more_layer_each_time_until_proven():
    export, calls = fake_export({"a", "b"})
    trials = try_keep_float(export, ["kept"], ["a", "b", "c", "d"], lambda _: None)
    assert calls == [["kept", "a"], ["kept", "a", "b"]]
    assert [(t.layers, t.proven, t.min_cosine) for t in trials] == [
        (["kept", "a"], False, 0.9), (["kept", "a", "b"], True, 0.999)]


def test_at_most_three_and_a_refusal_is_recorded():
    export, calls = fake_export({"x"}, refused="b")
    trials = try_keep_float(export, [], ["a", "b", "c", "d"], lambda _: None)
    assert calls == [["a"], ["a", "b"], ["a", "c"]] and not any(t.proven for t in trials)
    assert trials[1].problem and "b" in trials[1].problem and trials[1].min_cosine is None
