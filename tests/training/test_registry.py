"""Checkpoint registry: version names, published versions, the atomic latest pointer, resolve;
PublishCheckpoint records the run's inputs (lineage) in the index."""

import contextlib
import datetime as dt
import json

import lightning as L
import pytest
import torch

from datagen.store import LocalStore
from training import registry
from training.callbacks import PublishCheckpoint
from training.publish import publish_directory


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


def publish(store, model: str, version: str, loss: float) -> str:
    """Publish a one-file export folder as `version` of `model`."""
    folder = store.root.parent / "exports" / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"v": version}))
    prefix = registry.version_prefix(model, version)
    publish_directory(folder, store, prefix, {"metrics": {"train/loss": loss}, "global_step": 7})
    return prefix


def test_version_names_sort_by_time_and_hash_the_config():
    t0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    v0 = registry.new_version({"lr": 1e-3, "size": "tiny"}, now=t0)
    assert v0 == f"20260102T030405Z-{registry.config_hash({'size': 'tiny', 'lr': 1e-3})}"
    assert len(v0.split("-")[1]) == 8
    v1 = registry.new_version({"lr": 1e-3, "size": "tiny"}, now=t0 + dt.timedelta(seconds=1))
    other = registry.new_version({"lr": 2e-3, "size": "tiny"}, now=t0)
    assert sorted([v1, v0]) == [v0, v1]
    assert other.split("-")[1] != v0.split("-")[1]
    assert registry.version_prefix("image_vae", v0) == f"checkpoints/image_vae/{v0}"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "latest.json", ".hidden"])
def test_names_are_single_safe_segments(bad):
    with pytest.raises(ValueError, match="invalid"):
        registry.version_prefix("image_vae", bad)


def test_list_promote_resolve(store):
    assert registry.list_versions(store, "vae") == []
    assert registry.latest(store, "vae") is None
    with pytest.raises(LookupError, match="no latest vae"):
        registry.resolve(store, "vae")
    publish(store, "vae", "20260101T000000Z-aaaaaaaa", 0.5)
    publish(store, "vae", "20260102T000000Z-bbbbbbbb", 0.25)
    store.put_bytes("checkpoints/vae/20260103T000000Z-cccccccc/config.json", b"{}")  # no index
    assert registry.list_versions(store, "vae") == [
        "20260101T000000Z-aaaaaaaa",
        "20260102T000000Z-bbbbbbbb",
    ]
    with pytest.raises(LookupError, match="not published"):
        registry.promote_latest(store, "vae", "20260103T000000Z-cccccccc")

    pointer = registry.promote_latest(store, "vae", "20260102T000000Z-bbbbbbbb")
    on_disk = store.get_json("checkpoints/vae/latest.json")
    assert on_disk == pointer
    assert pointer["version"] == "20260102T000000Z-bbbbbbbb"
    assert pointer["uri"] == store.uri("checkpoints/vae/20260102T000000Z-bbbbbbbb")
    assert pointer["metrics"] == {"train/loss": 0.25} and pointer["global_step"] == 7
    assert dt.datetime.fromisoformat(pointer["created"]).tzinfo is not None
    assert registry.resolve(store, "vae") == "checkpoints/vae/20260102T000000Z-bbbbbbbb"
    assert (
        registry.resolve(store, "vae", "20260101T000000Z-aaaaaaaa")
        == "checkpoints/vae/20260101T000000Z-aaaaaaaa"
    )
    with pytest.raises(LookupError, match="20260101T000000Z-aaaaaaaa"):
        registry.resolve(store, "vae", "20990101T000000Z-deadbeef")
    # latest.json is not a version
    assert "latest.json" not in registry.list_versions(store, "vae")


def test_latest_pointer_is_replaced_atomically(store, monkeypatch):
    publish(store, "vae", "20260101T000000Z-aaaaaaaa", 0.5)
    publish(store, "vae", "20260102T000000Z-bbbbbbbb", 0.25)
    registry.promote_latest(store, "vae", "20260101T000000Z-aaaaaaaa")
    real_open_write = store.open_write

    class Crash(Exception):
        pass

    def crashing_open_write(key):
        @contextlib.contextmanager
        def writer():
            with real_open_write(key) as f:
                f.write(b'{"version": "2026')  # half a pointer, then the writer dies
                raise Crash

        return writer()

    monkeypatch.setattr(store, "open_write", crashing_open_write)
    with pytest.raises(Crash):
        registry.promote_latest(store, "vae", "20260102T000000Z-bbbbbbbb")
    monkeypatch.undo()
    assert registry.latest(store, "vae")["version"] == "20260101T000000Z-aaaaaaaa"
    leftovers = [p.name for p in (store.root / "checkpoints" / "vae").iterdir()]
    assert sorted(leftovers) == [
        "20260101T000000Z-aaaaaaaa",
        "20260102T000000Z-bbbbbbbb",
        "latest.json",
    ]


class _Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def export_pretrained(self, directory):
        torch.save(self.layer.state_dict(), f"{directory}/weights.pt")
        return {}


class _Data(L.LightningDataModule):
    train_sets = ("file:///data/a/manifest.json",)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)


def _fit(callback: PublishCheckpoint) -> None:
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    trainer.fit(_Tiny(), datamodule=_Data())


def test_publish_checkpoint_records_inputs(tmp_path):
    store_uri = str(tmp_path / "models")
    given = PublishCheckpoint("checkpoints/m/v1", store=store_uri, inputs=["s3://b/x.json"])
    _fit(given)
    assert given.index["inputs"] == ["s3://b/x.json"]
    assert given.uri == LocalStore(tmp_path / "models").uri("checkpoints/m/v1")
    default = PublishCheckpoint("checkpoints/m/v2", store=store_uri)
    _fit(default)
    index = LocalStore(tmp_path / "models").get_json("checkpoints/m/v2/index.json")
    assert index["inputs"] == ["file:///data/a/manifest.json"]
    assert index["global_step"] == 2 and "train/loss" in index["metrics"]
