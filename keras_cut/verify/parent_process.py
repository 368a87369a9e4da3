"""The parent's side of `verify` in a second process, on the machine's other cores.

`verify` needs two things from the parent: its activations at the tensors the submodel's inputs
and outputs stand for, and what Keras saves for the layers the submodel keeps. Importing
TensorFlow, loading the parent and tracing its replay take as long as the same for the
submodel, and both are mostly one core's work; so the parent is loaded and run in a child
process (the same code `verify` runs in process: `running.parent_function`, `run_batch`,
`running.weight_state`) while this process imports TensorFlow, loads the submodel and runs it.

The child reads the parent file itself (never a model object: nothing but arrays, digests and
keras-cut's own errors cross). Weights come back as digests (`golden.digest`, the same a golden
file keeps), an array only when it differs, to say by how much. The parent's errors are
re-raised here whole (`KerasCutError` pickles with its parts); anything else the child hits is
a bug shown with the child's traceback. Messages are length-prefixed pickles over the child's
own pipes: only this process's own child speaks on them.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from keras_cut.core.address import TensorAddress
from keras_cut.core.errors import KerasCutError

SWITCH = "KERAS_CUT_PARENT_PROCESS"  # "0": never; "1": whenever it can; unset: when it pays


@dataclass(frozen=True)
class Digest:
    """One saved array of a parent layer, as a golden file keeps it."""

    dtype: str
    shape: tuple[int, ...]
    sha256: str  # `golden.digest`: the dtype and shape hashed with the bytes


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def worth_it() -> bool:
    """A second process pays off beside a second core, when this process has not imported
    TensorFlow yet (the two imports and loads overlap; a library user's session that has it
    already would only pay the child's import). `SWITCH` overrides (tests use both ways)."""
    chosen = os.environ.get(SWITCH, "")
    if chosen in ("0", "1"):
        return chosen == "1"
    return cores() >= 2 and "tensorflow" not in sys.modules


class ChildFailed(RuntimeError):
    """The child process hit a bug or died: keras-cut's fault, shown with its traceback."""


class ParentProcess:
    """A child process for the parent: started early (it imports TensorFlow at once), given
    its work by `request` once the parent is known to be safe to load; answers in order."""

    def __init__(self) -> None:
        self._log = tempfile.TemporaryFile()  # the child's stderr, shown if it dies
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        # the folder this keras_cut was imported from, appended: an installed keras_cut (and
        # the standard library) is found first, a source tree run in place still is
        package_root = str(Path(__file__).resolve().parents[2])
        code = (f"import sys; sys.path.append({package_root!r}); "
                "from keras_cut.verify.parent_process import serve; serve()")
        self._child = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env)
        self._load_note: str | None = None
        self._loaded = False
        self._sending: threading.Thread | None = None

    def request(self, parent: Path, unsafe: bool, wanted: list[TensorAddress],
                data: dict[str, np.ndarray], batch_size: int, given: Any,
                weight_paths: list[str]) -> None:
        """The work: load `parent`, run it on `data` batch by batch up to `wanted`, digest the
        layers at `weight_paths`. Sent from a thread: the child reads it only once its import
        of TensorFlow is done, and this process has its own to do meanwhile."""
        message = {"parent": str(parent), "unsafe": unsafe, "wanted": wanted, "data": data,
                   "batch_size": batch_size, "given": given, "weight_paths": weight_paths}
        self._sending = threading.Thread(target=self._send_quietly, args=(message,),
                                         daemon=True)
        self._sending.start()

    def load_note(self) -> str | None:
        """What Keras' load of the parent had to say (a tf.keras 2 file's normalisation)."""
        if not self._loaded:
            self._load_note = self._receive("loaded")
            self._loaded = True
        return self._load_note

    def next_batch(self, _feed: Any = None) -> list[np.ndarray]:
        """The parent's activations on the next batch (the child has the same data)."""
        self.load_note()
        result: list[np.ndarray] = self._receive("batch")
        return result

    def weights(self) -> dict[str, dict[str, tuple[str, Digest]] | None]:
        """Each requested parent layer's saved arrays (label and digest by key), None for a
        path the loaded parent does not have."""
        result: dict[str, dict[str, tuple[str, Digest]] | None] = self._receive("weights")
        return result

    def array(self, path: str, key: str) -> np.ndarray:
        """One saved array of a parent layer, whole."""
        self._send(("array", path, key))
        result: np.ndarray = self._receive("array")
        return result

    def close(self) -> None:
        """End the child at once: what it holds is not wanted, and a TensorFlow process takes
        a second to tear itself down."""
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        if self._sending is not None:
            self._sending.join()
        for stream in (self._child.stdin, self._child.stdout, self._log):
            if stream is not None:
                stream.close()

    def _send_quietly(self, message: Any) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        with contextlib.suppress(OSError, ValueError):  # a child that died (or was ended)
            _write(stdin, message)                      # says so when read from

    def _send(self, message: Any) -> None:
        if self._sending is not None:
            self._sending.join()
        self._send_now(message)

    def _send_now(self, message: Any) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        try:
            _write(stdin, message)
        except OSError as exc:
            raise self._died() from exc

    def _receive(self, kind: str) -> Any:
        stdout = self._child.stdout
        assert stdout is not None
        try:
            tag, value = _read(stdout)
        except (EOFError, OSError, pickle.UnpicklingError) as exc:
            raise self._died() from exc
        if tag == "error":
            raise value
        if tag == "bug":
            raise ChildFailed(f"verify's parent process failed:\n{value}")
        if tag != kind:
            raise ChildFailed(f"verify's parent process answered {tag!r} where {kind!r} was due")
        return value

    def _died(self) -> ChildFailed:
        code = self._child.wait()
        self._log.seek(0)
        tail = self._log.read()[-2000:].decode(errors="replace")
        return ChildFailed(f"verify's parent process ended unexpectedly (exit {code}):\n{tail}")


def _write(stream: IO[bytes], message: Any) -> None:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (size,) = struct.unpack("<Q", head)
    blob = stream.read(size)
    if len(blob) < size:
        raise EOFError
    return pickle.loads(blob)  # noqa: S301 - our own child, on its own pipe


def serve() -> None:
    """The child: load the parent, send each batch's activations, then the weights' digests,
    then answer requests for single arrays until told to close."""
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the channel
    try:
        from keras_cut.backend.keras import loading

        loading.keras_module()  # while verify reads the files
        loading.use_threads(cores() - cores() // 2)  # the other half is the submodel's
        try:
            request = _read(channel_in)
        except EOFError:  # not needed after all
            return
        state = _Parent(request)
        _write(channel_out, ("loaded", state.note))
        for batch in state.batches():
            _write(channel_out, ("batch", batch))
        _write(channel_out, ("weights", state.digests()))
        while True:
            try:
                message = _read(channel_in)
            except EOFError:
                return
            if message[0] == "close":
                return
            _write(channel_out, ("array", state.array(message[1], message[2])))
    except KerasCutError as exc:
        _write(channel_out, ("error", exc))
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes back to be shown
        import traceback

        _write(channel_out, ("bug", traceback.format_exc()))


class _Parent:
    """The child's state: the parent loaded by Keras as `verify` loads it in process."""

    def __init__(self, request: dict[str, Any]):
        from keras_cut.file.reading import read_model_file

        self.request = request
        self.path = Path(request["parent"])
        model_file = read_model_file(self.path)
        from keras_cut.backend.keras import running, saved

        self.model, self.note = saved.load_saved_model(model_file, request["unsafe"], {})
        self.layers = dict(running.all_layers(self.model))

    def batches(self) -> Any:
        from keras_cut.backend.keras import running
        from keras_cut.verify.execution import run_batch

        function = running.parent_function(self.model, self.request["wanted"])
        data, size = self.request["data"], self.request["batch_size"]
        samples = len(next(iter(data.values())))
        for start in range(0, samples, size):
            batch = {name: array[start:start + size] for name, array in data.items()}
            yield run_batch(self.path, function, batch, self.request["given"])

    def digests(self) -> dict[str, dict[str, tuple[str, Digest]] | None]:
        from keras_cut.backend.keras import running
        from keras_cut.verify.golden import digest

        found: dict[str, dict[str, tuple[str, Digest]] | None] = {}
        for path in self.request["weight_paths"]:
            layer = self.layers.get(path)
            found[path] = None if layer is None else {
                key: (label, Digest(array.dtype.str, tuple(array.shape), digest(array)))
                for key, (label, array) in running.weight_state(layer).items()}
        return found

    def array(self, path: str, key: str) -> np.ndarray:
        from keras_cut.backend.keras import running

        result: np.ndarray = running.weight_state(self.layers[path])[key][1]
        return result


class Parent:
    """The parent as `verify` needs it: its activations at `wanted`, batch by batch, and what
    Keras saves for its layers; run by `child` (a `ParentProcess`, started early) for a file
    Keras loads by itself, else loaded here (a model keras-cut built from --custom-objects
    code is that very object)."""

    def __init__(self, path: Path, model_file: Any, unsafe: bool,
                 child: ParentProcess | None):
        if child is not None and getattr(model_file, "storage", None) is not None:
            child.close()
            child = None
        self.path, self.model_file, self.unsafe, self.child = path, model_file, unsafe, child
        self.wanted: list[TensorAddress] = []
        self._model: Any = None
        self._function: Any = None
        self._note: str | None = None
        self._digests: dict[str, Any] | None = None
        self._layers: dict[str, Any] | None = None
        self._custom: dict[str, Any] = {}

    def start(self, wanted: list[TensorAddress], data: dict[str, np.ndarray], batch_size: int,
              given: Any, weight_paths: list[str]) -> None:
        """What is wanted from the parent; the child starts on it at once."""
        self.wanted = wanted
        if self.child is not None:
            self.child.request(self.path, self.unsafe, wanted, data, batch_size, given,
                               weight_paths)

    def load(self, custom: dict[str, Any], say: Any) -> None:
        """Load the parent here (Keras imported first), unless the second process does."""
        say(f"loading {self.path}" + (" (in a second process)" if self.child else ""))
        if self.child is None:
            from keras_cut.backend.keras import running

            self._model = self._load_here(custom)
            self._function = running.parent_function(self._model, self.wanted)
        self._custom = custom

    def note(self) -> str | None:
        """What loading the parent had to say; raises the parent's load error, if it had one."""
        return self.child.load_note() if self.child else self._note

    def run(self, feed: dict[str, Any]) -> list[Any]:
        if self.child is not None:
            return self.child.next_batch()
        result: list[Any] = self._function(feed)
        return result

    def state(self, path: str) -> dict[str, tuple[str, Any]] | None:
        """What Keras saves for the parent layer at `path` (arrays, or digests), None if none."""
        if self.child is None:
            from keras_cut.backend.keras import running

            if self._layers is None:
                self._layers = dict(running.all_layers(self.model()))
            layer = self._layers.get(path)
            return None if layer is None else running.weight_state(layer)
        if self._digests is None:
            self._digests = self.child.weights()
        return self._digests.get(path)

    def fetch(self, path: str, key: str) -> np.ndarray:
        assert self.child is not None
        return self.child.array(path, key)

    def model(self) -> Any:
        """The parent loaded in this process (for the layer-by-layer search of a failure)."""
        if self._model is None:
            self._model = self._load_here(self._custom)
        return self._model

    def _load_here(self, custom: dict[str, Any]) -> Any:
        from keras_cut.backend.keras import saved

        model, self._note = saved.load_saved_model(self.model_file, self.unsafe, custom)
        return model
