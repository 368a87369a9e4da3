"""Outputs that are more than one file: an OpenVINO IR (.xml and its .bin) and a SavedModel
directory. Checked before any work, written atomically, never replacing what is not theirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_cut.core.errors import OutputError
from keras_cut.core.writing import atomic_output, check_artifact_output

MODEL = Path("model.keras")
LAYOUT = frozenset({"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"})


def as_saved_model(output: Path, model: Path, force: bool, inputs: tuple[Path, ...] = ()):
    return check_artifact_output(output, model, force, "", layout=LAYOUT,
                                 required="saved_model.pb", inputs=inputs)


def test_an_ir_is_refused_when_its_bin_exists(tmp_path):
    (tmp_path / "m.bin").write_bytes(b"keep")
    with pytest.raises(OutputError, match="m.bin: already exists"):
        check_artifact_output(tmp_path / "m.xml", MODEL, False, ".xml", (".bin",))
    assert check_artifact_output(tmp_path / "m.xml", MODEL, True, ".xml", (".bin",))


def test_a_directory_is_replaced_only_when_it_is_an_artifact(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"keep")
    with pytest.raises(OutputError, match="holds other files"):
        as_saved_model(folder, MODEL, True)
    assert (folder / "holiday.jpg").read_bytes() == b"keep"
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"old")
    with pytest.raises(OutputError, match="already exists"):
        as_saved_model(saved, MODEL, False)
    assert as_saved_model(saved, MODEL, True) == saved
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OutputError, match="already exists"):  # empty, but there
        as_saved_model(empty, MODEL, False)
    assert as_saved_model(empty, MODEL, True) == empty
    for name in (".", ".."):
        with pytest.raises(OutputError, match="name the artifact's folder"):
            as_saved_model(Path(name), MODEL, True)
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(OutputError, match="is a file"):
        as_saved_model(tmp_path / "afile", MODEL, True)


def test_an_ir_and_its_bin_land_together_or_not_at_all(tmp_path):
    out = tmp_path / "m.xml"
    with atomic_output(out, (".bin",)) as pending:
        pending.path.write_text("xml")
        pending.path.with_suffix(".bin").write_text("bin")
    assert out.read_text() == "xml" and out.with_suffix(".bin").read_text() == "bin"
    with pytest.raises(RuntimeError), atomic_output(out, (".bin",)) as pending:
        pending.path.write_text("new xml")
        pending.path.with_suffix(".bin").write_text("new bin")
        raise RuntimeError("the proof failed")
    assert out.read_text() == "xml" and out.with_suffix(".bin").read_text() == "bin"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]


def test_a_directory_replaces_the_old_one_only_once_complete(tmp_path):
    out = tmp_path / "saved"
    out.mkdir()
    (out / "saved_model.pb").write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out) as pending:
        pending.path.mkdir()
        (pending.path / "saved_model.pb").write_text("half")
        raise RuntimeError("interrupted")
    assert (out / "saved_model.pb").read_text() == "old"
    with atomic_output(out) as pending:
        pending.path.mkdir()
        (pending.path / "saved_model.pb").write_text("new")
    assert (out / "saved_model.pb").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no temporary or old copy left


def test_a_saved_model_with_anything_else_is_not_replaced(tmp_path):
    """A folder that merely has a `saved_model.pb` (found by a new user: --force deleted the
    rest), or a SavedModel with the user's files beside it, stays."""
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "saved_model.pb").write_bytes(b"")
    (fake / "important.txt").write_text("precious")
    with pytest.raises(OutputError, match="holds other files"):
        as_saved_model(fake, MODEL, True)
    assert (fake / "important.txt").read_text() == "precious"
    nopb = tmp_path / "nopb"
    nopb.mkdir()
    (nopb / "variables").mkdir()
    with pytest.raises(OutputError, match="holds other files"):
        as_saved_model(nopb, MODEL, True)


def test_an_output_folder_holding_an_input_is_refused(tmp_path):
    """--force on a SavedModel folder that holds the parent (or the --inputs file) would
    delete it (found by a new user)."""
    saved = tmp_path / "sm"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    (saved / "variables").mkdir()
    model = saved / "variables" / "parent.keras"
    model.write_bytes(b"")
    with pytest.raises(OutputError, match="holds .*parent.keras, an input"):
        as_saved_model(saved, model, True)
    data = saved / "assets" / "in.npz"
    data.parent.mkdir()
    data.write_bytes(b"")
    with pytest.raises(OutputError, match="in.npz, an input"):
        as_saved_model(saved, MODEL, True, inputs=(data,))
    assert model.exists() and data.exists()


def test_a_block_that_wrote_nothing_is_an_error_not_a_success(tmp_path):
    out = tmp_path / "m.xml"
    out.write_text("old")
    with pytest.raises(OutputError, match="cannot be written"), \
            atomic_output(out, (".bin",)) as pending:
        pending.path.write_text("new xml")  # the .bin never written
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["m.xml"]
