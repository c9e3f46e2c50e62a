"""`generated_worlds`: one `world_requests` partition materializes a world into the store (with
fallbacks when no checkpoint is published); the launchpad config can create the request; the
world-inbox sensor turns folders into requests once each."""

import dagster as dg
import numpy as np
import pytest
from PIL import Image

from assets.partitions import WORLD_REQUESTS
from assets.worlds_generated import generated_worlds, world_prefix
from datagen.store import LocalStore
from datagen.world_requests import WorldRequest, load_request, save_request
from orchestration.sensors_worldgen import WORLD_INBOX_ENV, world_inbox_sensor

FAST = {"frames_per_level": 2, "orbit_frames": 2, "fit_steps": 1, "refine_steps": 5,
        "device": "cpu"}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def _png(path, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _materialize(store, instance, rid, config):
    return dg.materialize(
        [generated_worlds], partition_key=rid, instance=instance, resources={"store": store},
        run_config={"ops": {"generated_worlds": {"config": config}}}, raise_on_error=False,
    )  # fmt: skip


def test_asset_materializes_one_request_partition(tmp_path):
    store = LocalStore(tmp_path / "store")
    data = _png(tmp_path / "in.png").read_bytes()
    rid = save_request(store, data, ".png", WorldRequest(["a bay", "a boat", "a rope"], levels=2,
                                                         steps=3, size=32))  # fmt: skip
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(WORLD_REQUESTS.name, [rid])
    result = _materialize(store, instance, rid, FAST)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.partition == rid
    meta = {k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()}
    prefix = world_prefix(rid)
    assert meta["uri"] == store.uri(f"{prefix}/world.json") and meta["num_levels"] == 2
    assert meta["ply_uris"] == [store.uri(f"{prefix}/levels/level_{i}.ply") for i in range(2)]
    assert meta["zoom_video"] == store.uri(f"{prefix}/zoom.mp4")
    assert meta["preview"].startswith("![levels / rendered views](data:image/png;base64,")
    assert len(meta["fallbacks"]) == 3 and meta["prompts"] == ["a bay", "a boat"]
    manifest = store.get_json(f"{prefix}/world.json")
    assert manifest["source_image"] == store.uri(f"requests/worlds/{rid}/image.png")
    for key in ("levels/level_0.ply", "levels/level_1.png", "orbits/level_1.mp4", "preview.png"):
        assert store.exists(f"{prefix}/{key}")
    # a partition without a request fails with a message saying how to add one
    instance.add_dynamic_partitions(WORLD_REQUESTS.name, ["wmissing"])
    failed = _materialize(store, instance, "wmissing", FAST)
    assert not failed.success
    assert "add-world-request" in str(failed.get_step_failure_events()[0].event_specific_data.error)


def test_launchpad_config_creates_the_request(tmp_path):
    store = LocalStore(tmp_path / "store")
    image = _png(tmp_path / "in.png", seed=1)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(WORLD_REQUESTS.name, ["ui-world"])
    config = {**FAST, "image": str(image), "prompts": ["a field"], "steps": 3, "size": 32}
    assert _materialize(store, instance, "ui-world", config).success
    request, data = load_request(store, "ui-world")
    assert request.prompts == ["a field"] and data == image.read_bytes()
    assert (request.id, request.size, request.steps) == ("ui-world", 32, 3)
    assert store.get_json(f"{world_prefix('ui-world')}/world.json")["num_levels"] == 1


def test_world_inbox_sensor_registers_each_folder_once(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    for name, prompts in (("bay", "a bay\na boat\n"), ("forest", "a forest\n")):
        (inbox / name).mkdir(parents=True)
        _png(inbox / name / "photo.png", seed=len(name))
        (inbox / name / "prompts.txt").write_text(prompts)
    (inbox / "forest" / "settings.json").write_text('{"p": 4, "steps": 9}')
    (inbox / "no-prompts").mkdir()
    _png(inbox / "no-prompts" / "x.png")
    monkeypatch.setenv(WORLD_INBOX_ENV, str(inbox))
    store = LocalStore(tmp_path / "store")
    instance = dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(instance=instance, resources={"store": store})
    result = world_inbox_sensor(ctx)
    assert isinstance(result, dg.SensorResult)
    keys = sorted(r.partition_key for r in result.run_requests)
    assert len(keys) == 2
    (add,) = result.dynamic_partitions_requests
    assert sorted(add.partition_keys) == keys and add.partitions_def_name == WORLD_REQUESTS.name
    requests = {tuple(load_request(store, k)[0].prompts): load_request(store, k)[0] for k in keys}
    assert requests[("a forest",)].p == 4 and requests[("a forest",)].steps == 9
    assert requests[("a bay", "a boat")].levels == 2
    instance.add_dynamic_partitions(WORLD_REQUESTS.name, keys)  # what the daemon does
    again = world_inbox_sensor(
        dg.build_sensor_context(instance=instance, resources={"store": store})
    )
    assert isinstance(again, dg.SkipReason) and "no new world requests" in again.skip_message
    monkeypatch.setenv(WORLD_INBOX_ENV, str(tmp_path / "absent"))
    skip = world_inbox_sensor(
        dg.build_sensor_context(instance=instance, resources={"store": store})
    )
    assert isinstance(skip, dg.SkipReason) and "unavailable" in skip.skip_message
