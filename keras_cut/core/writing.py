"""Nothing is lost: outputs are checked before any work and written atomically.

`check_output` runs before a model is loaded, so a refused write costs nothing. `atomic_output`
gives a temporary path in the target folder; only a complete file is renamed onto the target,
and an interrupted or failed write (SIGINT, SIGTERM, full disk) leaves no partial file and an
existing target intact.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

from keras_cut.core.errors import Option, OutputError

FORMATS = {".keras": "keras", ".h5": "h5"}


def check_output(output: str | Path, model: str | Path, force: bool,
                 formats: dict[str, str] = FORMATS, inputs: tuple[Path, ...] = ()) -> Path:
    """Refuse a write that would lose data or cannot succeed; return the output path.

    `formats` are the allowed suffixes; `inputs` are further files that must not be
    overwritten beside `model`."""
    output = Path(output)
    endings = " or ".join(formats)
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give a file name ending in {endings}")
    fmt = formats.get(output.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"{output}: unsupported output format {output.suffix or '(no extension)'!r}; "
            f"name the file {endings}"
        )
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{output}: the folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{output}: the folder {str(folder)!r} is not writable")
    if any(_same_file(output, Path(p)) for p in (model, *inputs)):
        raise OutputError(
            f"{output}: this is the input model; keras-cut never writes over its input "
            "(also not with ", Option.FORCE, "); choose another output name"
        )
    if output.exists() and not force:
        raise OutputError(f"{output}: already exists; pass ", Option.FORCE, " to overwrite it")
    return output


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        with contextlib.suppress(OSError):
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


class _Terminated(BaseException):
    """SIGTERM turned into an exception so that the temporary file is removed."""


class PendingFile:
    """A file being written at `path`; renamed onto `target` when complete."""

    def __init__(self, path: Path, target: Path):
        self.path = path
        self.target = target


@contextlib.contextmanager
def atomic_output(output: Path) -> Iterator[PendingFile]:
    """Yield a temporary file beside `output`; rename it onto its target (`output`, unless the
    block changes it) when the block succeeds."""
    tmp = output.with_name(f".{output.stem}.{secrets.token_hex(4)}.partial{output.suffix}")
    pending = PendingFile(tmp, output)
    previous = _on_sigterm()
    try:
        yield pending
        _fsync(tmp)
        os.replace(tmp, pending.target)
        _fsync_dir(output.parent)
    except _Terminated:
        _remove(tmp)
        raise KeyboardInterrupt from None
    except OSError as exc:
        _remove(tmp)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"{output}: the disk is full; nothing was written") from exc
        raise OutputError(f"{output}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        _remove(tmp)
        raise
    finally:
        _restore_sigterm(previous)


def _on_sigterm():
    def handler(signum, frame):  # noqa: ARG001
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
