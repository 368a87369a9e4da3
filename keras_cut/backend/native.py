"""What every runtime runner needs: silencing the native logs runtimes print past Python, and
the one-line error for a runtime that is not installed."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from keras_cut.core.errors import ArtifactError


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
