"""Publishing an export folder: files, index last, verified fetch."""

import json

import pytest

from datagen.store import LocalStore
from training.publish import fetch_published, publish_directory


def test_publish_and_fetch_round_trip(tmp_path):
    src = tmp_path / "export"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text(json.dumps({"a": 1}))
    (src / "sub" / "weights.safetensors").write_bytes(b"\x00" * 1000)
    store = LocalStore(tmp_path / "store")
    index = publish_directory(src, store, "checkpoints/m/v1", {"model": "m", "metrics": {"l": 1}})
    assert set(index["files"]) == {"config.json", "sub/weights.safetensors"}
    assert store.get_json("checkpoints/m/v1/index.json")["model"] == "m"
    out = fetch_published(store, "checkpoints/m/v1", tmp_path / "fetched")
    assert (out / "sub" / "weights.safetensors").read_bytes() == b"\x00" * 1000
    store.put_bytes("checkpoints/m/v1/config.json", b"tampered")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch_published(store, "checkpoints/m/v1", tmp_path / "again")
