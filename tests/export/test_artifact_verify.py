"""`verify PARENT ARTIFACT` and `verify GOLDEN ARTIFACT`: an exported artifact checked later,
by the record `export` keeps inside it; against a golden file with only its runtime."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import ROOT, assert_one_line_error, run_cli
from tests.export.test_export import _tamper
from tests.test_no_tensorflow import BLOCKED_PROBE

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

RESIDUAL = BY_NAME["residual"].path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from keras_cut.export.exporting import export_model

    d = tmp_path_factory.mktemp("artifacts")
    for suffix in (".tflite", ".onnx"):
        export_model(RESIDUAL, d / f"head{suffix}", input_layers=["res_b"])
    return d


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_an_artifact_is_verified_against_its_parent_by_its_record(artifacts, suffix, capsys):
    result = run_cli(capsys, "verify", RESIDUAL, artifacts / f"head{suffix}", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["passed"] and doc["runtime"] in ("LiteRT (ai_edge_litert)", "ONNX Runtime")
    assert {(i["source"], i["kind"]) for i in doc["inputs"]} == {("res_b", "cut_input"),
                                                                ("res_a", "crossing")}
    assert [o["source"] for o in doc["outputs"]] == ["res_out"]


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_tampered_artifact_fails_verify(artifacts, suffix, tmp_path, capsys):
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes((artifacts / f"head{suffix}").read_bytes())
    _tamper(bad, RESIDUAL, "res_out")
    result = run_cli(capsys, "verify", RESIDUAL, bad)
    assert result.code == 1 and "FAILED" in result.out


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_golden_checks_of_an_artifact_run_without_tensorflow(artifacts, suffix, tmp_path,
                                                            capsys):
    golden = tmp_path / "head.golden.npz"
    artifact = artifacts / f"head{suffix}"
    assert run_cli(capsys, "verify", RESIDUAL, artifact, "--save-golden", golden).code == 0
    argv = ["verify", str(golden), str(artifact)]
    proc = subprocess.run([sys.executable, "-c", BLOCKED_PROBE.format(args=argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.rstrip().endswith("HEAVY="), proc.stderr
    assert "PASSED: 1 of 1 outputs agree" in proc.stdout
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(artifact.read_bytes())
    _tamper(bad, RESIDUAL, "res_out")
    proc = subprocess.run([sys.executable, "-c", BLOCKED_PROBE.format(
        args=["verify", str(golden), str(bad)])], capture_output=True, text=True, cwd=ROOT,
        timeout=120)
    assert proc.returncode == 1 and "FAILED" in proc.stdout, proc.stderr


def test_an_artifact_without_a_record_is_refused_in_one_line(tmp_path, capsys, keras):
    model = keras.saving.load_model(RESIDUAL, compile=False)
    model(np.zeros((1, 16, 16, 4), "float32"))
    plain = tmp_path / "plain.onnx"
    model.export(str(plain), format="onnx", verbose=False)
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, plain),
                          "carries no keras-cut record", "keras-cut export")
