"""Keras and TensorFlow: loading a model file (`loading`, `saved`), building a class-saved
model as a functional copy (`materialize`), running models layer by layer (`running`), and
the private Keras attributes relied on, listed in one place (`private`)."""
