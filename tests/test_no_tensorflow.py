"""`--help`, `inspect` and name checks never import TensorFlow or Keras (a fresh process each)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sample_models.registry import BY_NAME
from tests.cli_helpers import ROOT

PROBE = """
import sys
from keras_cut.cli.app import main
code = main({args!r})
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""

CASES = [
    (["--help"], 0),
    (["inspect", "--help"], 0),
    (["inspect", str(BY_NAME["nested"].path)], 0),
    (["inspect", str(BY_NAME["cnn_h5"].path), "--json"], 0),
    (["inspect", str(BY_NAME["nested"].path), "--layer", "backbone/stem_bn"], 0),
    (["inspect", str(BY_NAME["cnn"].path), "--layer", "no_such_layer"], 2),
    (["diff", str(BY_NAME["cnn"].path), str(BY_NAME["cnn_h5"].path)], 1),
    (["diff", str(BY_NAME["nested"].path), str(BY_NAME["nested"].path), "--json"], 0),
    (["diff", "--help"], 0),
    (["graph", str(BY_NAME["nested"].path), "-o", "/tmp/keras_cut_no_tf.html", "--force"], 0),
    (["convert", str(BY_NAME["nested"].path), "-o", "/tmp/keras_cut_no_tf_convert.keras",
      "--force"], 0),
    (["graph", str(BY_NAME["nested"].path), "-o", "/tmp/keras_cut_no_tf.mmd", "--force",
      "--input-layer", "backbone/stem_relu"], 0),
]


@pytest.mark.parametrize("args,code", CASES, ids=[" ".join(a[:2]) + f"-{i}" for i, (a, _) in
                                                  enumerate(CASES)])
def test_no_tensorflow_import(args, code):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "HEAVY=\n" in proc.stderr or proc.stderr.endswith("HEAVY="), proc.stderr


CUT_NAME_CHECKS = [
    ["cut", str(BY_NAME["cnn"].path), "-o", "/tmp/never.keras", "--output-layer", "no_such"],
    ["cut", str(BY_NAME["shared"].path), "-o", "/tmp/never.keras", "--output-layer",
     "shared_dense"],
    ["cut", str(BY_NAME["residual"].path), "-o", "/tmp/never.keras", "--input-layer", "res_out",
     "--output-layer", "res_a"],
    ["cut", str(BY_NAME["cnn"].path), "-o", str(BY_NAME["cnn"].path), "--output-layer",
     "flatten"],
    ["cut", "--help"],
]


@pytest.mark.parametrize("args", CUT_NAME_CHECKS, ids=lambda a: " ".join(a[-2:]))
def test_cut_refusals_do_not_import_tensorflow(args):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == (0 if "--help" in args else 2), proc.stderr
    assert proc.stderr.rstrip().endswith("HEAVY="), proc.stderr


BLOCKED_PROBE = """
import sys

class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "jax", "torch", "tf_keras"):
            raise ImportError(f"{{name}} is blocked in this test: cut must not import it")
        return None

sys.meta_path.insert(0, Refuse())
from keras_cut.cli.app import main
code = main({args!r})
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""

CUTS = [
    (BY_NAME["nested"].path, "sub.keras", ["--input-layer", "backbone/stem_relu"]),
    (BY_NAME["residual"].path, "sub.h5", ["--input-layer", "res_b", "--freeze"]),
    (BY_NAME["cnn_h5"].path, "sub.keras", ["--output-layer", "intermediate_dense"]),
    (BY_NAME["text"].path, "sub.keras", ["--output-layer", "lstm", "--json"]),
]


@pytest.mark.parametrize("model,out,args", CUTS, ids=lambda v: str(v)[-20:])
def test_cut_writes_without_tensorflow(model, out, args, tmp_path):
    """A whole cut, written, in a process where importing TensorFlow fails."""
    argv = ["cut", str(model), "-o", str(tmp_path / out), *args]
    proc = subprocess.run([sys.executable, "-c", BLOCKED_PROBE.format(args=argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.rstrip().endswith("HEAVY="), proc.stderr
    assert (tmp_path / out).stat().st_size > 0


def test_blocked_import_really_blocks(tmp_path):
    """The probe above can fail: verify must import TensorFlow, and there it exits 2 with one
    line saying so (no traceback, not the "models disagree" code 1)."""
    argv = ["verify", str(BY_NAME["cnn"].path), str(BY_NAME["cnn"].path)]
    proc = subprocess.run([sys.executable, "-c", BLOCKED_PROBE.format(args=argv)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "blocked in this test" in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "TensorFlow cannot be imported" in errors[0]
    assert "Traceback" not in proc.stderr
