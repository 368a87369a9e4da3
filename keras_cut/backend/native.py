"""What every runtime runner needs: silencing the native logs runtimes print past Python, the
one-line error for a runtime that is not installed, and the order of a signature's outputs."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from keras_cut.core.errors import ArtifactError


def error_line(exc: BaseException, limit: int = 300) -> str:
    """A runtime's error message as one line (they span lines)."""
    return " ".join(str(exc).split())[:limit]


def missing_runtime(path: Path, module: str, extra: str) -> ArtifactError:
    return ArtifactError(f"{path}: running it needs {module}, which is not installed; install it "
                         f"with pip install 'keras-cut[{extra}]'")


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Runtimes print from C++ straight to file descriptor 2 ("Created TensorFlow Lite XNNPACK
    delegate for CPU"): silence it for the call, unless stderr is not a real file."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            try:
                yield
            finally:
                os.dup2(saved, fd)
    finally:
        os.close(saved)


def keras_order(names: list[str]) -> list[str]:
    """A signature's outputs in the order Keras flattens the model's outputs: a list's as
    `output_0, output_1, …`, a dict's by sorted key (what `keras.tree.flatten` does)."""
    numbered = [re.fullmatch(r"output_(\d+)", n) for n in names]
    if all(numbered):
        return sorted(names, key=lambda n: int(n.rsplit("_", 1)[1]))
    return sorted(names)
