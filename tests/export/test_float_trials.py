"""`try_keep_float`'s loop, with the export replaced: one more layer each time, in the order
given, stopping at the first proven; a refusal is recorded and the next layer tried."""

from __future__ import annotations

from types import SimpleNamespace

from keras_cut.core.errors import ArtifactError
from keras_cut.export.keep_float import try_keep_float


def fake_export(proven_with: set[str], refused: str | None = None,
                reranked: list[str] | None = None):
    calls = []

    def export(layers, target):
        calls.append(list(layers))
        if refused in layers:
            raise ArtifactError(f"no operation named after {refused}")
        proven = proven_with <= set(layers)
        output = SimpleNamespace(cosine_similarity=0.999 if proven else 0.9)
        # the trial's own --locate: what loses most once these layers are float
        ranking = [(x, 1.0) for x in reranked if x not in layers] if reranked else []
        locate = SimpleNamespace(own_losses=ranking)
        return SimpleNamespace(proven=proven,
                               verify=SimpleNamespace(outputs=[output], locate=locate))

    return export, calls


def test_one_more_layer_each_time_until_proven():
    export, calls = fake_export({"a", "b"})
    trials = try_keep_float(export, ["kept"], ["a", "b", "c", "d"], lambda _: None)
    assert calls == [["kept", "a"], ["kept", "a", "b"]]
    assert [(t.layers, t.proven, t.min_cosine) for t in trials] == [
        (["kept", "a"], False, 0.9), (["kept", "a", "b"], True, 0.999)]


def test_at_most_three_exports_and_a_refusal_is_recorded():
    export, calls = fake_export({"x"}, refused="b")
    trials = try_keep_float(export, [], ["a", "b", "c", "d"], lambda _: None)
    assert calls == [["a"], ["a", "b"], ["a", "c"], ["a", "c", "d"]]
    assert not any(t.proven for t in trials) and len(trials) == 4
    assert trials[1].problem and "b" in trials[1].problem and trials[1].min_cosine is None


def test_the_next_layer_comes_from_the_last_trials_own_ranking():
    """A second culprit shows only once the first is float: the next layer tried is what
    the last trial's artifact loses most in, not the first ranking's runner-up."""
    export, calls = fake_export({"b", "e"}, reranked=["e", "c"])
    trials = try_keep_float(export, [], ["b", "c", "d"], lambda _: None)
    assert calls == [["b"], ["b", "e"]] and trials[-1].proven
