"""The benchmark runs end to end on tiny models (once), so `make bench` cannot rot.

It asserts that every case ran and what it reports, never how fast anything was. To stay cheap
(each baseline imports TensorFlow, seconds apiece) it runs every keras-cut side but only the
first baseline; the other baselines are compiled, so that a broken one fails here."""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys

import pytest

from tests.cli_helpers import ROOT


@pytest.mark.heavy
def test_bench_runs_on_tiny_models(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--tiny", "--smoke", "--repeat", "1",
         "--cache",
         str(tmp_path / "cache"), "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["tiny"] is True and doc["machine"]["cores"]
    names = [case["name"] for case in doc["cases"]]
    assert any(n.startswith("inspect") for n in names)
    assert any(n.startswith("cut --verify") for n in names)
    for case in doc["cases"]:
        assert case["ours_min_s"] is not None, case["name"]
        assert case["verdict"] != "FAILED TO RUN", case["name"]
    assert doc["cases"][0]["baseline_min_s"] is not None  # the one baseline ran
    for script in (ROOT / "bench" / "baselines").glob("*.py"):
        py_compile.compile(str(script), doraise=True, cfile=str(tmp_path / "x.pyc"))
