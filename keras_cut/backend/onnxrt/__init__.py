"""ONNX Runtime: running a `.onnx` artifact in its own runtime, without TensorFlow."""
