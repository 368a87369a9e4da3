"""Baseline for `export`: the hand script a user writes today. The seed recipe for the prefix,
Keras' own export, the artifact in its runtime, and a NumPy comparison with the parent's
activations on the same 32 inputs (batches of 8)."""

import sys
import tempfile
from pathlib import Path

import keras
import numpy as np

parent_path, layer, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
parent = keras.saving.load_model(parent_path, compile=False)
prefix = keras.Model(parent.input, parent.get_layer(layer).output)
x = np.random.default_rng(0).uniform(-1, 1, (32, *parent.input_shape[1:])).astype("float32")
fmt = "litert" if out.suffix == ".tflite" else "onnx"
with tempfile.TemporaryDirectory() as folder:
    target = Path(folder) / out.name
    prefix(x[:1])  # Keras refuses to export (to ONNX) a model never called
    prefix.export(str(target), format=fmt, verbose=False)
    want = prefix.predict(x, batch_size=8, verbose=0)
    if fmt == "litert":
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(target)).get_signature_runner()
        name = next(iter(runner.get_input_details()))
        got = np.concatenate([next(iter(runner(**{name: x[i:i + 8]}).values()))
                              for i in range(0, 32, 8)])
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        got = np.concatenate([session.run(None, {name: x[i:i + 8]})[0]
                              for i in range(0, 32, 8)])
    ok = np.allclose(got, want, atol=1e-5, rtol=1e-5)
    print(f"max abs {np.abs(got - want).max():.3g}", file=sys.stderr)
    if ok:
        target.replace(out)
print("PASSED" if ok else "FAILED")
sys.exit(0 if ok else 1)
