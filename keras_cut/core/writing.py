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
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

from keras_cut.core.errors import Option, OutputError

FORMATS = {".keras": "keras", ".h5": "h5"}


def check_artifact_output(output: str | Path, model: str | Path, force: bool, suffix: str,
                          companions: tuple[str, ...] = (), layout: frozenset[str] = frozenset(),
                          required: str = "", inputs: tuple[Path, ...] = ()) -> Path:
    """`check_output` for an exported artifact: a file named `*suffix` with `companions` (files
    of those suffixes written beside it), or, where `suffix` is empty, a directory. An existing
    directory is replaced (with `force`) only when it is empty or holds nothing but an
    artifact's `layout` (the names its top level may have), `required` among them, and never
    when `model` or one of `inputs` lies inside it: a folder of other files is never removed."""
    output = Path(output)
    if suffix:
        checked = check_output(output, model, force, {suffix.lower(): suffix}, inputs)
        for companion in companions:
            check_output(output.with_suffix(companion), model, force, {companion: companion},
                         inputs)
        return checked
    if output.name in ("", ".", ".."):
        raise OutputError(f"{output}: name the artifact's folder (a SavedModel is written as "
                          "a new directory), e.g. -o features")
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: is a file; a SavedModel is written as a directory, give "
                          "a new folder's name")
    _check_folder(output)
    inside = [p for p in (Path(model), *inputs) if _within(Path(p), output)]
    if inside:
        raise OutputError(f"{output}: holds {inside[0]}, an input of this command; keras-cut "
                          "never replaces its inputs (also not with ", Option.FORCE,
                          "); choose another output name")
    if output.is_dir():
        entries = {p.name for p in output.iterdir()}
        if entries and (not entries <= layout or required not in entries):
            raise OutputError(f"{output}: is a folder that holds other files than an artifact "
                              "of this kind; keras-cut replaces only such an artifact; give a "
                              "new name")
        if not force:
            raise OutputError(f"{output}: already exists; pass ", Option.FORCE,
                              " to replace it")
    return output


def _within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


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
    _check_folder(output)
    if any(_same_file(output, Path(p)) for p in (model, *inputs)):
        raise OutputError(
            f"{output}: this is the input model; keras-cut never writes over its input "
            "(also not with ", Option.FORCE, "); choose another output name"
        )
    if output.exists() and not force:
        raise OutputError(f"{output}: already exists; pass ", Option.FORCE, " to overwrite it")
    return output


def _check_folder(output: Path) -> None:
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{output}: the folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{output}: the folder {str(folder)!r} is not writable")


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        with contextlib.suppress(OSError):
            return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


class _Terminated(BaseException):
    """SIGTERM turned into an exception so that the temporary file is removed."""


class PendingFile:
    """A file being written at `path`; renamed onto `target` when complete. `companions`: the
    suffixes of files written beside it that travel with it (an OpenVINO IR's `.bin`)."""

    def __init__(self, path: Path, target: Path, companions: tuple[str, ...] = ()):
        self.path = path
        self.target = target
        self.companions = companions

    def pairs(self) -> list[tuple[Path, Path]]:
        """(temporary, final) for each file, companions first: the main file lands last."""
        return [*((self.path.with_suffix(c), self.target.with_suffix(c))
                  for c in self.companions), (self.path, self.target)]

    def land(self) -> None:
        """Put every file in place, or none: what exists at the targets is moved aside first,
        restored if a rename fails, and removed only once all new files are in place; SIGINT
        and SIGTERM wait until the files are settled one way or the other."""
        pairs = self.pairs()  # a file the block did not write fails its rename: an error
        for tmp, _ in pairs:
            if tmp.is_file():
                _fsync(tmp)
        moved: list[tuple[Path, Path]] = []  # (old copy, target)
        placed: list[Path] = []
        with _signals_held():
            try:
                for _, target in pairs:
                    if target.exists() or target.is_symlink():
                        old = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
                        os.replace(target, old)
                        moved.append((old, target))
                for tmp, target in pairs:
                    os.replace(tmp, target)
                    placed.append(target)
            except OSError:
                for target in placed:
                    _remove(target)
                for old, target in moved:
                    os.replace(old, target)
                raise
        for old, _ in moved:
            _remove(old)
        _fsync_dir(self.target.parent)

    def discard(self) -> None:
        for tmp, _ in self.pairs():
            _remove(tmp)


@contextlib.contextmanager
def atomic_output(output: Path, companions: tuple[str, ...] = (),
                  suffix: str | None = None) -> Iterator[PendingFile]:
    """Yield a temporary path beside `output` (a file, or a directory the block creates), named
    `*suffix` (default: `output`'s); rename it, and the `companions` written beside it, onto its
    target (`output`, unless the block changes it) when the block succeeds."""
    ending = output.suffix if suffix is None else suffix
    tmp = output.with_name(f".{output.stem}.{secrets.token_hex(4)}.partial{ending}")
    pending = PendingFile(tmp, output, companions)
    previous = _on_sigterm()
    try:
        yield pending
        pending.land()
    except _Terminated:
        pending.discard()
        raise KeyboardInterrupt from None
    except OSError as exc:
        pending.discard()
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(f"{output}: the disk is full; nothing was written") from exc
        raise OutputError(f"{output}: cannot be written ({exc.strerror or exc})") from exc
    except BaseException:
        pending.discard()
        raise
    finally:
        _restore_sigterm(previous)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the block (they are delivered after it)."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):  # no POSIX signal masks here
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return
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
