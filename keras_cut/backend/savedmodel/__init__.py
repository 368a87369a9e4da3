"""TensorFlow SavedModel artifacts (a directory), run by TensorFlow's own loader."""
