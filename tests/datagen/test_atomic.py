"""Atomic local writes: the whole new content or the old file, never a part or a leftover."""

import json

import pytest

from datagen import atomic
from datagen.atomic import atomic_write_bytes, atomic_write_json


def test_writes_create_folders_replace_whole_files_and_leave_no_temp(tmp_path):
    path = tmp_path / "a" / "b" / "result.json"
    assert atomic_write_json(path, {"x": 1, "y": [1.5]}) == path
    assert json.loads(path.read_text()) == {"x": 1, "y": [1.5]}
    assert path.read_text().endswith("\n")
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["result.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"old": True})

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # the temp file is gone
