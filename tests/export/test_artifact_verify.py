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
from tests.export.artifacts import (
    RUNTIME_ONLY,
    SUFFIXES,
    copy_artifact,
    tamper,
    weights_file,
)
from tests.test_no_tensorflow import BLOCKED_PROBE

pytestmark = pytest.mark.heavy
pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
pytest.importorskip("openvino", reason="openvino is not installed")

RESIDUAL = BY_NAME["residual"].path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from keras_cut.export.exporting import export_model

    d = tmp_path_factory.mktemp("artifacts")
    for suffix in (".tflite", ".onnx", ".xml", ""):
        export_model(RESIDUAL, d / f"head{suffix}", input_layers=["res_b"])
    return d


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_an_artifact_is_verified_against_its_parent_by_its_record(artifacts, suffix, capsys):
    result = run_cli(capsys, "verify", RESIDUAL, artifacts / f"head{suffix}", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["passed"] and doc["runtime"] in ("LiteRT (ai_edge_litert)", "ONNX Runtime",
                                                "OpenVINO Runtime", "TensorFlow (tf.saved_model)")
    assert {(i["source"], i["kind"]) for i in doc["inputs"]} == {("res_b", "cut_input"),
                                                                ("res_a", "crossing")}
    assert [o["source"] for o in doc["outputs"]] == ["res_out"]


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_tampered_artifact_fails_verify(artifacts, suffix, tmp_path, capsys):
    bad = copy_artifact(artifacts / f"head{suffix}", tmp_path / f"bad{suffix}")
    tamper(bad, RESIDUAL, "res_out")
    result = run_cli(capsys, "verify", RESIDUAL, bad)
    assert result.code == 1 and "FAILED" in result.out


def test_a_damaged_saved_model_is_one_line(artifacts, tmp_path, capsys):
    bad = copy_artifact(artifacts / "head", tmp_path / "bad")
    data = weights_file(bad)
    data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")  # TensorFlow's checksum fails
    assert_one_line_error(run_cli(capsys, "verify", RESIDUAL, bad),
                          f"{bad}: TensorFlow cannot load the SavedModel")


@pytest.mark.parametrize("suffix", RUNTIME_ONLY)
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
    bad = copy_artifact(artifact, tmp_path / f"bad{suffix}")
    tamper(bad, RESIDUAL, "res_out")
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


TELEMETRY_PROBE = """
import multiprocessing, os, socket, sys

os.environ.pop("CI", None)  # OpenVINO itself stays quiet in CI; keras-cut must be quiet anywhere
def refuse(*args, **kwargs):
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.socket.connect = refuse
from keras_cut.cli.app import main
code = main({args!r})
print("TELEMETRY=" + str(sys.modules.get("openvino_telemetry", "absent")), file=sys.stderr)
print("CHILDREN=" + str(len(multiprocessing.active_children())), file=sys.stderr)
sys.exit(code)
"""


def test_openvino_sends_no_telemetry(tmp_path):
    """OpenVINO's converter and runtime send usage telemetry from a forked process unless
    told not to; keras-cut turns its sender off (its package is never imported)."""
    out = tmp_path / "head.xml"
    argv = ["export", str(RESIDUAL), "-o", str(out), "--input-layer", "res_b"]
    proc = subprocess.run([sys.executable, "-c", TELEMETRY_PROBE.format(args=argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "TELEMETRY=None" in proc.stderr and "CHILDREN=0" in proc.stderr, proc.stderr


def test_a_record_cannot_loosen_the_judgement_of_a_float_artifact(artifacts, tmp_path, capsys):
    """The record is the artifact's own claim: a cosine rule in it counts only for a
    quantization keras-cut makes; a float artifact stays judged by atol/rtol."""
    import onnx

    from keras_cut.backend.onnxrt.metadata import write_record

    bad = copy_artifact(artifacts / "head.onnx", tmp_path / "bad.onnx")
    tamper(bad, RESIDUAL, "res_out")
    meta = {p.key: p.value for p in onnx.load(str(bad)).metadata_props}
    record = json.loads(meta["keras_cut"])
    record.update(min_cosine=-1.0, min_cosine_for={"res_out": -1.0})
    write_record(bad, json.dumps(record))
    result = run_cli(capsys, "verify", RESIDUAL, bad)
    assert result.code == 1 and "FAILED" in result.out
    record["quantized"] = "made-up"
    write_record(bad, json.dumps(record))
    assert run_cli(capsys, "verify", RESIDUAL, bad).code == 1


@pytest.mark.parametrize("suffix", RUNTIME_ONLY)
def test_the_parents_second_process_gives_the_same_verdict(artifacts, suffix, tmp_path,
                                                           monkeypatch):
    """The parent run by verify's second process (this process then needs only the
    artifact's runtime) judges a good and a tampered artifact as the parent run here does."""
    from keras_cut.verify.parent_process import SWITCH
    from keras_cut.verify.verification import verify_models

    bad = copy_artifact(artifacts / f"head{suffix}", tmp_path / f"bad{suffix}")
    tamper(bad, RESIDUAL, "res_out")
    for artifact, passed in ((artifacts / f"head{suffix}", True), (bad, False)):
        reports = []
        for switch in ("0", "1"):
            monkeypatch.setenv(SWITCH, switch)
            reports.append(verify_models(RESIDUAL, artifact, samples=10, batch_size=4).to_dict())
        assert reports[0]["passed"] is passed and reports[0] == reports[1]


def test_export_with_the_parents_second_process(tmp_path, monkeypatch):
    from keras_cut.export.exporting import export_model
    from keras_cut.verify.parent_process import SWITCH

    monkeypatch.setenv(SWITCH, "1")
    result = export_model(RESIDUAL, tmp_path / "head.onnx", input_layers=["res_b"])
    assert result.verify is not None and result.verify.passed
    assert (tmp_path / "head.onnx").exists()
