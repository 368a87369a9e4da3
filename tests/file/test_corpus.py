"""Every bad file and bad argument: exit 2, one `Error:` line naming it, no traceback, nothing
written, the input unchanged (checksummed before and after)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from keras_cut.cut.cutting import cut_model
from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.corpus import build


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def good_cut(tmp_path_factory):
    path = tmp_path_factory.mktemp("good") / "cut.keras"
    cut_model(BY_NAME["cnn"].path, path, ["intermediate_dense"], [])
    return path


def checksum(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def test_corpus_through_every_command(corpus, good_cut, tmp_path, capsys):
    for bad in corpus:
        before = checksum(bad.path)
        shown = str(bad.path)
        result = run_cli(capsys, "inspect", bad.path)
        if bad.inspect_ok:
            assert result.code == 0, (bad.name, result.err)
            for word in bad.words:
                assert word in result.out, (bad.name, word)
        else:
            assert_one_line_error(result, shown, *bad.words)
        out = tmp_path / f"{bad.name}.out.keras"
        result = run_cli(capsys, "cut", bad.path, "-o", out, "--output-layer", "flatten")
        if bad.cut_ok:
            assert result.code == 0 and out.exists(), (bad.name, result.err)
            for word in bad.cut_words:
                assert word in result.err, (bad.name, word)
            out.unlink()
        else:
            assert_one_line_error(result, shown, *(bad.load_words or bad.words))
            assert not out.exists(), bad.name
        result = run_cli(capsys, "verify", bad.path, good_cut)
        assert_one_line_error(result, shown, *(bad.load_words or bad.words))
        assert checksum(bad.path) == before, bad.name
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".keras")]


def test_broken_layer_blocks_only_cuts_that_keep_it(corpus, tmp_path, capsys):
    bad = next(b for b in corpus if b.name == "weights_misshaped.keras")
    out = tmp_path / "keeps.keras"
    result = run_cli(capsys, "cut", bad.path, "-o", out, "--output-layer", "intermediate_dense")
    assert_one_line_error(result, str(bad.path), "intermediate_dense",
                          "do not match the architecture")
    assert not out.exists()
    dropped = run_cli(capsys, "cut", bad.path, "-o", out, "--output-layer", "flatten")
    assert dropped.code == 0 and out.exists(), dropped.err


def test_bad_arguments(good_cut, tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(BY_NAME["shared"].path.read_bytes())
    before = checksum(model)
    existing = tmp_path / "exists.keras"
    existing.write_bytes(b"keep me")
    cases = [
        (["cut", model, "-o", tmp_path / "o.keras", "--output-layer", "nope"],
         ["--output-layer", "nope"]),
        (["cut", model, "-o", tmp_path / "o.keras", "--output-layer", "shared_dense"],
         ["ambiguous"]),
        (["cut", model, "-o", tmp_path / "no" / "o.keras", "--output-layer", "pre"],
         ["does not exist"]),
        (["cut", model, "-o", model, "--output-layer", "pre", "--force"], ["input model"]),
        (["cut", model, "-o", existing, "--output-layer", "pre"], ["--force"]),
        (["cut", model, "-o", tmp_path / "o.pt", "--output-layer", "pre"], [".keras or .h5"]),
        (["verify", BY_NAME["cnn"].path, good_cut, "--samples", "0"], ["--samples"]),
        (["verify", BY_NAME["cnn"].path, good_cut, "--samples", "-1"], ["--samples"]),
        (["verify", BY_NAME["cnn"].path, good_cut, "--input-shape", "garbage"],
         ["--input-shape"]),
    ]
    for args, words in cases:
        assert_one_line_error(run_cli(capsys, *args), *words)
    np.savez(tmp_path / "wrong.npz", wrong=np.zeros((2, 28, 28, 3), "float32"))
    assert_one_line_error(run_cli(capsys, "verify", BY_NAME["cnn"].path, good_cut, "--inputs",
                                  tmp_path / "wrong.npz"), "--inputs", "wrong")
    assert checksum(model) == before
    assert existing.read_bytes() == b"keep me"
    assert sorted(os.listdir(tmp_path)) == ["exists.keras", "m.keras", "wrong.npz"]
