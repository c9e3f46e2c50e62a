"""``wonderforge view DIR``: a viser page (127.0.0.1) with a generated world's multi-scale surfels
and a zoom slider that applies the opacity modulation live.

The slider's value ``z`` (in levels, 0 = the landscape) sets the rendering scale
``ρ = λ_0 + z·log2 p`` of every surfel; its opacity is multiplied by its coverage-aware tent weight
(``models.worldgen.render``: WonderZoom Prop. 1 where the levels overlap). With "follow the zoom
path" the browser's camera moves along the world's zoom path (the same log-scale interpolation
as ``zoom.mp4``). Modes: ``splats`` (viser's Gaussian splats; a level whose weight is 0 is hidden)
or ``points`` (one point per surfel, shown while its weight is at least ½).

Viser stores covariances as float16, which cannot hold the tiny surfels of deep levels in world
units; each level is therefore a scene node of its own, in coordinates centred on the level's
surfels and divided by their median size, with the node's position and scale undoing that.
Without the optional ``viewer`` extra (viser) ``view`` explains how to install it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datagen.world_files import load_world_surfels, read_npy
from models.geometry import quaternion_to_matrix
from models.surfels import SurfelSet, merge
from models.worldgen import World, ZoomLevel, level_weights, world_coverage, zoom_cameras

VIEWER_EXTRA = "viewer"
MISSING_VISER = (
    "wonderforge view needs viser, the optional '{extra}' extra: "
    "pip install 'wonderforge[{extra}]' (or pip install viser)"
)


def _tensor(value) -> torch.Tensor | None:
    return None if value is None else torch.tensor(value, dtype=torch.float64)


@dataclass
class ViewerWorld:
    """A loaded world folder: ``world`` (surfels of all levels, levels with cameras and depths),
    per-surfel deepest covering level ``cover`` and the zoom path's cameras (``path_K``,
    ``path_c2w``, ``frames_per_level`` per step)."""

    directory: Path
    manifest: dict
    world: World
    level_sets: list[SurfelSet]
    cover: torch.Tensor
    path_K: torch.Tensor
    path_c2w: torch.Tensor
    frames_per_level: int

    @property
    def num_levels(self) -> int:
        return len(self.world.levels)

    def log_scale(self, zoom: float) -> float:
        """``ρ`` of the slider value ``zoom`` (levels)."""
        return self.world.base_log_scale + float(zoom) * math.log2(self.world.p)

    def weights(self, zoom: float) -> list[np.ndarray]:
        """Per level, the modulation weight ``[N_l]`` of its surfels at ``zoom``."""
        w = level_weights(
            self.world.native_level(),
            torch.full((len(self.world.surfels),), self.log_scale(zoom), dtype=torch.float64),
            self.world.level_log_scales(),
            self.cover,
        ).numpy()
        out, start = [], 0
        for s in self.level_sets:
            out.append(w[start : start + len(s)])
            start += len(s)
        return out

    def camera(self, zoom: float) -> tuple[np.ndarray, np.ndarray]:
        """``(K [3, 3], c2w [4, 4])`` on the zoom path at ``zoom``."""
        i = round(min(max(zoom, 0.0), self.num_levels - 1) * self.frames_per_level)
        return self.path_K[i].numpy(), self.path_c2w[i].numpy()


def load_viewer_world(directory: str | Path, frames_per_level: int = 32) -> ViewerWorld:
    """Read a world folder (``datagen.world_files``) for viewing."""
    directory = Path(directory)
    manifest, sets = load_world_surfels(directory)
    H, W = manifest.get("size", [1, 1])
    levels = []
    for lv in manifest["levels"]:
        npy = lv["files"].get("depth_npy")
        depth = torch.from_numpy(read_npy(directory / npy)) if npy else torch.zeros(H, W)
        levels.append(ZoomLevel(
            lv["index"], lv.get("prompt", ""), _tensor(lv["K"]), _tensor(lv["c2w"]),
            float(lv["log_scale"]), torch.zeros(3, H, W), depth.float(),
            _tensor(lv.get("fixed_point")), _tensor(lv.get("target")), num_surfels=len(sets[len(levels)]),
        ))  # fmt: skip
    world = World(merge(*sets), levels, int(manifest["p"]), manifest.get("zoom_mode", "dolly"))
    cover = world_coverage(world)
    if len(levels) > 1:
        K, c2w = zoom_cameras(world, frames_per_level)
    else:
        K, c2w = levels[0].K[None], levels[0].c2w[None]
    return ViewerWorld(directory, manifest, world, sets, cover, K, c2w, frames_per_level)


def splat_arrays(s: SurfelSet) -> dict[str, np.ndarray]:
    """Viser splat arrays of one level in its normalised frame: ``centers [N, 3]``,
    ``covariances [N, 3, 3]``, ``rgbs [N, 3]``, ``opacities [N]``, and the node's ``position [3]``
    and ``scale`` (world = position + scale · local)."""
    centre = s.means.double().mean(0)
    unit = float(s.scales.double().median()) or 1.0
    R = quaternion_to_matrix(s.quats.double())
    thin = s.scales.double().min(dim=-1, keepdim=True).values * 1e-2
    sd = torch.cat([s.scales.double(), thin], -1) / unit
    cov = R @ torch.diag_embed(sd.square()) @ R.transpose(-1, -2)
    return {
        "centers": ((s.means.double() - centre) / unit).float().numpy(),
        "covariances": cov.float().numpy(),
        "rgbs": s.colors[:, :3].clamp(0, 1).float().numpy(),
        "opacities": s.opacities.clamp(0, 1).float().numpy(),
        "position": centre.numpy(),
        "scale": unit,
    }


def _set_camera(client, K: np.ndarray, c2w: np.ndarray, height: int) -> None:
    forward, down = c2w[:3, 2], c2w[:3, 1]
    client.camera.position = c2w[:3, 3]
    client.camera.look_at = c2w[:3, 3] + forward
    client.camera.up_direction = -down
    client.camera.fov = 2 * math.atan(height / (2 * K[1, 1]))


def serve(
    directory: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    mode: str = "splats",
    block: bool = True,
):
    """Start the viewer (module doc); returns the ``viser.ViserServer`` when ``block`` is False."""
    import viser

    if mode not in ("splats", "points"):
        raise ValueError(f"mode must be 'splats' or 'points', got {mode!r}")
    vw = load_viewer_world(directory)
    server = viser.ViserServer(host=host, port=port, verbose=False)
    server.gui.add_markdown(
        "\n".join(
            f"**level {lv['index']}**: {lv.get('prompt', '')}" for lv in vw.manifest["levels"]
        )
    )
    slider = server.gui.add_slider("zoom (levels)", 0.0, float(vw.num_levels - 1), 0.01, 0.0)
    follow = server.gui.add_checkbox("follow the zoom path", True)
    H = int(vw.manifest.get("size", [512, 512])[0])
    nodes = []
    for i, s in enumerate(vw.level_sets):
        a = splat_arrays(s)
        if mode == "splats":
            handle = server.scene.add_gaussian_splats(
                f"/level_{i}", a["centers"], a["covariances"], a["rgbs"], a["opacities"][:, None],
                position=a["position"], scale=a["scale"],
            )  # fmt: skip
        else:
            handle = server.scene.add_point_cloud(
                f"/level_{i}", a["centers"], a["rgbs"], point_size=2.0, position=a["position"],
                scale=a["scale"],
            )  # fmt: skip
        nodes.append((handle, a))

    def update(_event=None) -> None:
        for (handle, a), w in zip(nodes, vw.weights(slider.value)):
            shown = w > 0 if mode == "splats" else w >= 0.5
            handle.visible = bool(shown.any())
            if not handle.visible:
                continue
            if mode == "splats":
                handle.opacities = (a["opacities"] * w)[:, None]
            else:
                handle.points, handle.colors = a["centers"][shown], a["rgbs"][shown]
        if follow.value:
            K, c2w = vw.camera(slider.value)
            for client in server.get_clients().values():
                _set_camera(client, K, c2w, H)

    slider.on_update(update)
    follow.on_update(update)
    server.on_client_connect(lambda client: _set_camera(client, *vw.camera(slider.value), H))
    update()
    print(f"world viewer: http://{host}:{port}  ({vw.num_levels} levels, "
          f"{len(vw.world.surfels)} surfels, {mode}; Ctrl-C stops it)")  # fmt: skip
    if not block:
        return server
    try:
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        server.stop()
    return None
