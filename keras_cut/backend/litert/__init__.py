"""LiteRT (TensorFlow Lite): running a `.tflite` artifact in its own interpreter
(`ai_edge_litert`), without TensorFlow."""

# LiteRT's private API keras-cut relies on (tested by tests/export/test_locate.py, which runs it
# on every locate of a .tflite): `Interpreter._get_ops_details()`, the operations in execution
# order with their output tensor indices (`intermediates.py`); there is no public equivalent.
PRIVATE = ("Interpreter._get_ops_details",)
