"""The .keras zip built around an HDF5 file in place: standard readers accept it, bit for bit."""

from __future__ import annotations

import shutil
import subprocess
import zipfile

import h5py
import numpy as np
import pytest

from keras_cut.cut.ziparchive import USERBLOCK, finish_keras_zip


def _archive(path, force_zip64: bool) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w", userblock_size=USERBLOCK) as h5:
        h5.create_dataset("layers/dense/vars/0", data=rng.normal(size=(300, 70)))
        h5["layers/dense/vars"].attrs["name"] = "dense"
    members = {"metadata.json": b'{"keras_version": "3"}', "config.json": b"{}" * 5000,
               "empty.txt": b""}
    finish_keras_zip(path, "model.weights.h5", list(members.items()), force_zip64=force_zip64)
    return members


@pytest.mark.parametrize("force_zip64", [False, True], ids=["zip", "zip64"])
def test_zipfile_reads_every_member_and_checks_crcs(tmp_path, force_zip64):
    path = tmp_path / "m.keras"
    members = _archive(path, force_zip64)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None  # every CRC-32 and size agrees
        assert [i.filename for i in zf.infolist()] == ["model.weights.h5", *members]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
        for name, data in members.items():
            assert zf.read(name) == data
        weights = zf.read("model.weights.h5")
        assert weights[:8] == b"\x89HDF\r\n\x1a\n"  # the member is the HDF5 file itself
        with zf.open("model.weights.h5") as member, h5py.File(member, "r") as h5:
            expected = np.random.default_rng(0).normal(size=(300, 70))
            np.testing.assert_array_equal(h5["layers/dense/vars/0"][()], expected)
            assert h5["layers/dense/vars"].attrs["name"] == "dense"
    # HDF5 also reads the whole file (the zip header sits in its user block)
    with h5py.File(path, "r") as h5:
        assert h5["layers/dense/vars/0"].shape == (300, 70)


@pytest.mark.skipif(shutil.which("unzip") is None, reason="needs Info-ZIP's `unzip`")
@pytest.mark.parametrize("force_zip64", [False, True], ids=["zip", "zip64"])
def test_info_zip_accepts_the_archive(tmp_path, force_zip64):
    path = tmp_path / "m.keras"
    _archive(path, force_zip64)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout


def test_a_damaged_member_fails_the_crc(tmp_path):
    """The CRC covers the HDF5 bytes: flipping one is caught (the check can say 'not fine')."""
    path = tmp_path / "m.keras"
    _archive(path, False)
    data = bytearray(path.read_bytes())
    data[USERBLOCK + 4000] ^= 0xFF
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() == "model.weights.h5"
