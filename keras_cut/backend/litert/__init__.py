"""LiteRT (TensorFlow Lite): running a `.tflite` artifact in its own interpreter
(`ai_edge_litert`), without TensorFlow."""
