"""The `diff` operation: what changed between two model files (layers, configs, weights, and
the file's other members)."""
