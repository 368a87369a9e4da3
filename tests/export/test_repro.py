"""`verify --save-repro DIR`: the reduced reproducer of where an artifact goes wrong. Each is
checked as a bug report's reader would: the part fails its golden file in a fresh process
(only its runtime), the segment loads in plain Keras (a fresh process too) and computes the
golden's answer from the golden's inputs, and the README gives the command that shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import assert_one_line_error, run_cli, run_process
from tests.export.artifacts import converter_writing_wrong, copy_artifact, tamper

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

RESIDUAL = BY_NAME["residual"].path


@pytest.fixture(scope="module")
def exported(tmp_path_factory, keras):
    from keras_cut.export.exporting import export_model

    d = tmp_path_factory.mktemp("repro")
    for suffix in (".tflite", ".onnx"):
        export_model(RESIDUAL, d / f"residual{suffix}")
    return d


def bad_artifact(exported: Path, suffix: str, layer: str, tmp_path: Path) -> Path:
    bad = copy_artifact(exported / f"residual{suffix}", tmp_path / f"bad{suffix}")
    tamper(bad, RESIDUAL, layer)
    return bad


def golden_arrays(path: Path) -> tuple[dict, list[np.ndarray], list[np.ndarray]]:
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["keras_cut_golden"]))
        ins = [archive[f"input/{i}"] for i in range(len(meta["inputs"]))]
        outs = [archive[f"output/{i}"] for i in range(len(meta["outputs"]))]
    return meta, ins, outs


def keras_in_fresh_process(segment: Path, inputs: list[np.ndarray], tmp_path: Path
                           ) -> np.ndarray:
    """The segment loaded by plain Keras (no keras-cut) in a new process, run on `inputs`."""
    np.savez(tmp_path / "feed.npz", *inputs)
    script = (
        "import sys, numpy as np, keras\n"
        "m = keras.saving.load_model(sys.argv[1], compile=False)\n"
        "f = np.load(sys.argv[2]); xs = [f[k] for k in sorted(f.files)]\n"
        "np.save(sys.argv[3], np.asarray(m.predict(xs if len(xs) > 1 else xs[0], verbose=0)))\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", script, str(segment),
                           str(tmp_path / "feed.npz"), str(tmp_path / "out.npy")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return np.load(tmp_path / "out.npy")


def test_an_onnx_part_is_cut_out_of_the_artifact_and_fails_as_it_did(exported, tmp_path,
                                                                       capsys):
    bad = bad_artifact(exported, ".onnx", "res_b", tmp_path)
    repro = tmp_path / "repro"
    result = run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", repro, "--json")
    assert result.code == 1, result.err
    written = json.loads(result.out)["repro"]
    assert written["culprit"] == "res_b" and written["starts_at"] == ["res_a"]
    assert written["layers"] == ["res_b"] and written["part_from"] == "the artifact"
    assert written["reproduces"] is True
    assert sorted(p.name for p in repro.iterdir()) == ["README.md", "golden.npz", "part.onnx",
                                                       "segment.keras"]
    # the part is the artifact's own nodes: fewer than the whole, the tampered weight kept
    import onnx

    whole, part = onnx.load(str(bad)), onnx.load(str(repro / "part.onnx"))
    assert 0 < len(part.graph.node) < len(whole.graph.node)
    # in a fresh process, with only its runtime: the part fails its golden file (exit 1)
    shown = run_process("verify", repro / "golden.npz", repro / "part.onnx", "--json")
    assert shown.code == 1, shown.err
    assert json.loads(shown.out)["outputs"][0]["passed"] is False
    # plain Keras computes the golden's answer from the golden's inputs (NCHW in the golden,
    # as the artifact keeps it; Keras is NHWC)
    meta, ins, outs = golden_arrays(repro / "golden.npz")
    assert ins[0].shape[1] == 8 and outs[0].shape[1] == 8  # channels first
    got = keras_in_fresh_process(repro / "segment.keras", [np.moveaxis(ins[0], 1, -1)],
                                 tmp_path)
    np.testing.assert_allclose(got, np.moveaxis(outs[0], 1, -1), atol=1e-5, rtol=1e-5)
    # the segment is the parent's own: verify passes
    assert run_cli(capsys, "verify", RESIDUAL, repro / "segment.keras").code == 0
    readme = (repro / "README.md").read_text()
    assert "keras-cut verify golden.npz part.onnx" in readme and "exits 1" in readme
    assert "`res_b` (Conv2D)" in readme


def test_a_tflite_part_is_exported_afresh_and_says_whether_it_reproduces(exported, tmp_path,
                                                                         capsys, monkeypatch):
    """A weight tampered in the given artifact is not in a fresh export: the report says the
    part does NOT reproduce. A converter that writes the weight wrong (simulated) does: the
    fresh part fails its golden file."""
    bad = bad_artifact(exported, ".tflite", "res_c", tmp_path)
    first = tmp_path / "first"
    result = run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", first, "--json")
    assert result.code == 1, result.err
    written = json.loads(result.out)["repro"]
    assert written["culprit"] == "res_c" and written["part_from"] == "a fresh export"
    assert written["reproduces"] is False and "NOT reproduce" in (first / "README.md").read_text()
    assert run_process("verify", first / "golden.npz", first / "part.tflite").code == 0

    converter_writing_wrong(monkeypatch, RESIDUAL, "res_c")
    second = tmp_path / "second"
    result = run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", second, "--json")
    written = json.loads(result.out)["repro"]
    assert written["reproduces"] is True, result.out
    assert run_process("verify", second / "golden.npz", second / "part.tflite").code == 1
    meta, ins, outs = golden_arrays(second / "golden.npz")
    got = keras_in_fresh_process(second / "segment.keras", ins, tmp_path)
    np.testing.assert_allclose(got, outs[0], atol=1e-5, rtol=1e-5)


def test_the_reproducer_directory_loses_nothing(exported, tmp_path, capsys):
    bad = bad_artifact(exported, ".onnx", "res_b", tmp_path)
    repro = tmp_path / "repro"
    repro.mkdir()
    (repro / "notes.txt").write_text("mine")
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", repro,
                                  "--force"), "other files")
    (repro / "notes.txt").unlink()
    assert run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", repro).code == 1
    before = (repro / "golden.npz").read_bytes()
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", repro),
                          "--force")
    assert (repro / "golden.npz").read_bytes() == before
    assert run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro", repro, "--force").code == 1
    # never the folder that holds the parent or the artifact, --force or not
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro",
                                  tmp_path, "--force"), "would hold")
    assert bad.exists()
    # a correct artifact: nothing to reproduce, nothing written, said
    clean = tmp_path / "clean"
    result = run_cli(capsys, "verify", RESIDUAL, exported / "residual.onnx", "--save-repro",
                     clean)
    assert result.code == 0 and not clean.exists()
    assert "no reproducer" in result.err
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, RESIDUAL, "--save-repro",
                                  tmp_path / "x"), "--save-repro", "artifact")
    # another output of the same command inside it would be replaced with it: refused first
    golden = tmp_path / "other" / "golden.npz"
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, bad, "--save-repro",
                                  tmp_path / "other", "--save-golden", golden),
                          "--save-repro", "golden.npz")
    assert not (tmp_path / "other").exists()

