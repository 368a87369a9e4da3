"""The benchmark runs end to end on tiny models (once), so `make bench` cannot rot.

It asserts that every case ran and what it reports, never how fast anything was."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli_helpers import ROOT


def test_bench_runs_on_tiny_models(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--tiny", "--repeat", "1", "--cache",
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
    recipe_fails = [c for c in doc["cases"] if "works where the recipe fails" in c["target"]]
    assert recipe_fails and all(c["verdict"] == "met" for c in recipe_fails)
