"""Everything in keras-cut that imports Keras or TensorFlow: loading models and running them.

Imported lazily, only by `verify` (and `cut --verify`), which must run models. Every other
command works from the file alone. The private Keras attributes this package relies on are
reached only through `backend.private`, which lists them.
"""
