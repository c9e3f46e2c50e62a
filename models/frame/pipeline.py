"""Frame-model inference (WorldFM §2.1 online stage): reference image + pose, a scene point cloud
(or Gaussians) and a target pose → anchor render → few generator steps → frame.

``FramePipeline.set_scene`` caches everything that does not change along a camera path: the
reference latent (one VAE encode), the reference tokens of the generator (patch embedding,
positions, camera embedding), the cloud on the model's device, and the initial noise (the same
noise for every frame by default, which keeps consecutive frames stable). Per frame only the
anchor is rendered and encoded, then the generator runs its steps and the VAE decodes. A generator
with causal conditions (``condition_attention="causal"``) also caches the reference's keys and
values of every layer per scene and the anchor's per frame, so each step runs the target only.

``FramePipeline.compile()`` compiles a frame's whole GPU work — anchor encode, the anchor's keys
and values, every generator step, decode — as one ``torch.compile`` graph; with the default
``mode="reduce-overhead"`` a frame is one CUDA-graph replay. The scene's cached tensors are
marked as static addresses so the graph reads them in place (a new scene re-records the graph,
it does not recompile it).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from models.autoencoders import decode, encode
from models.geometry import c2w_to_w2c
from models.render import render_gaussians, render_points

from .causal import ConditionCache
from .conditions import FrameCondition
from .dit import FrameDiT
from .dmd import PAPER_TIMESTEPS, FewStepSampler
from .schedule import DiffusionSchedule


class FramePipeline:
    """generator: a (distilled) ``FrameDiT``; vae: the image VAE of its latent space;
    timesteps: generator steps (``[999, 200]``: 2 steps, ``[999]``: 1); radius_px: point splat
    radius; fixed_noise: reuse one noise draw (``seed``) for all frames."""

    def __init__(
        self,
        generator: FrameDiT,
        vae: nn.Module,
        schedule: DiffusionSchedule,
        timesteps: tuple[int, ...] | list[int] = PAPER_TIMESTEPS,
        radius_px: float = 1.0,
        seed: int = 0,
        fixed_noise: bool = True,
    ):
        self.generator, self.vae = generator.eval(), vae.eval()
        self.sampler = FewStepSampler(schedule, timesteps)
        self.radius_px, self.seed, self.fixed_noise = radius_px, seed, fixed_noise
        self._scene: dict | None = None
        self._frame = 0
        self._frame_fn = self._frame_from_anchor
        self._compiled = self._graphs = False

    def compile(self, mode: str | None = "reduce-overhead", **kw) -> FramePipeline:
        """Compile a frame's work (anchor encode → condition keys/values → steps → decode) as one
        graph; ``mode``/``kw`` go to ``torch.compile`` (``reduce-overhead``: CUDA graphs, on
        CUDA). The first frame of each step count compiles (minutes at paper size). Returns self."""
        fn = torch.compile(self._frame_from_anchor, mode=mode, dynamic=False, **kw)
        self._compiled = True
        self._graphs = mode == "reduce-overhead" and self.device.type == "cuda"
        self._frame_fn = fn
        if self._scene is not None:
            self._mark_static(self._scene)
        return self

    def _mark_static(self, scene: dict) -> None:
        tensors = [scene[k] for k in ("reference", "reference_K", "reference_c2w", "noise")]
        tensors.append(scene["reference_tokens"])
        tensors += [t for kv in scene.get("reference_kv", ()) for t in kv]
        for t in tensors:
            torch._dynamo.mark_static_address(t)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.generator.parameters()).dtype

    @torch.no_grad()
    def set_scene(
        self,
        reference_image: Tensor,
        reference_K: Tensor,
        reference_c2w: Tensor,
        points: Tensor | None = None,
        colors: Tensor | None = None,
        gaussians: dict[str, Tensor] | None = None,
    ) -> None:
        """reference_image ``[3, H, W]`` in [0, 1], reference_K ``[3, 3]`` (pixels),
        reference_c2w ``[4, 4]``; the scene as ``points [N, 3]`` + ``colors [N, 3]`` in [0, 1], or
        ``gaussians`` = ``render_gaussians`` inputs (means, quats, scales, opacities, colors)."""
        if (points is None) == (gaussians is None):
            raise ValueError("give either points (+ colors) or gaussians")
        if points is not None and (colors is None or colors.shape != points.shape):
            raise ValueError("points [N, 3] need colors [N, 3]")
        dev = self.device
        H, W = reference_image.shape[-2:]
        ref_latent = encode(self.vae, reference_image[None].to(dev, self.vae.dtype))
        K, c2w = reference_K.to(dev).float()[None], reference_c2w.to(dev).float()[None]
        base = FrameCondition(ref_latent.to(self.dtype), ref_latent.to(self.dtype), K, c2w, K, c2w)
        scene = {
            "size": (H, W),
            "reference": base.reference,
            "reference_K": K,
            "reference_c2w": c2w,
            "reference_tokens": self.generator.embed_reference(base),
        }
        if self.generator.config.condition_attention == "causal":
            scene["reference_kv"] = self.generator.reference_kv(base, scene["reference_tokens"])
        if points is not None:
            scene["points"] = points.to(dev).float().contiguous()
            scene["colors"] = colors.to(dev).float().contiguous()
        else:
            scene["gaussians"] = {k: v.to(dev).float() for k, v in gaussians.items()}
        g = torch.Generator().manual_seed(self.seed)
        scene["noise"] = torch.randn(ref_latent.shape, generator=g).to(dev, self.dtype)
        if self._compiled:
            self._mark_static(scene)
        self._scene, self._frame = scene, 0

    def _require_scene(self) -> dict:
        if self._scene is None:
            raise RuntimeError("call set_scene(...) first")
        return self._scene

    @torch.no_grad()
    def render_anchor(self, K: Tensor, c2w: Tensor) -> Tensor:
        """The explicit anchor: scene render ``[3, H, W]`` in [0, 1] at ``K [3, 3]``, ``c2w [4, 4]``."""
        s = self._require_scene()
        H, W = s["size"]
        K, c2w = K.to(self.device).float(), c2w.to(self.device).float()
        if "points" in s:
            rgb, _, _ = render_points(s["points"], s["colors"], K, c2w, H, W, self.radius_px)
            return rgb
        g = s["gaussians"]
        out = render_gaussians(
            g["means"], g["quats"], g["scales"], g["opacities"], g["colors"],
            c2w_to_w2c(c2w)[None], K[None], W, H,
        )  # fmt: skip
        return out.rgb[0].clamp(0, 1)

    def _noise(self) -> Tensor:
        s = self._require_scene()
        if self.fixed_noise:
            return s["noise"]
        g = torch.Generator().manual_seed(self.seed + self._frame)
        return torch.randn(s["noise"].shape, generator=g).to(s["noise"])

    @torch.no_grad()
    def render(
        self, target_K: Tensor, target_c2w: Tensor, return_anchor: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """One frame ``[3, H, W]`` in [0, 1] at ``target_K [3, 3]``, ``target_c2w [4, 4]`` (and the
        anchor render when ``return_anchor``)."""
        anchor_rgb = self.render_anchor(target_K, target_c2w)
        frame = self.render_from_anchor(anchor_rgb, target_K, target_c2w)
        return (frame, anchor_rgb) if return_anchor else frame

    @torch.no_grad()
    def render_from_anchor(
        self, anchor_rgb: Tensor, target_K: Tensor, target_c2w: Tensor
    ) -> Tensor:
        """One frame ``[3, H, W]`` from a given anchor render ``anchor_rgb [3, H, W]`` in [0, 1]
        (e.g. from another renderer) at ``target_K [3, 3]``, ``target_c2w [4, 4]``."""
        s = self._require_scene()
        if anchor_rgb.shape != (3, *s["size"]):
            raise ValueError(f"anchor_rgb must be [3, {s['size'][0]}, {s['size'][1]}], got "
                             f"{list(anchor_rgb.shape)}")  # fmt: skip
        dev = self.device
        args = (anchor_rgb[None].to(dev), target_K.to(dev).float()[None],
                target_c2w.to(dev).float()[None], self._noise())  # fmt: skip
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()
        frame = self._frame_fn(*args, s)[0]
        self._frame += 1
        return frame.clone() if self._graphs else frame  # a graph's output is its buffer

    def _frame_from_anchor(
        self, anchor_rgb: Tensor, K: Tensor, c2w: Tensor, noise: Tensor, s: dict
    ) -> Tensor:
        """The GPU work of a frame: ``anchor_rgb [1, 3, H, W]``, ``K [1, 3, 3]``, ``c2w [1, 4, 4]``,
        initial noise ``[1, C, h, w]``, the scene ``s`` → frame ``[1, 3, H, W]`` float32."""
        anchor = encode(self.vae, anchor_rgb.to(self.vae.dtype)).to(self.dtype)
        cond = FrameCondition(anchor, s["reference"], K, c2w, s["reference_K"], s["reference_c2w"])
        if "reference_kv" in s:  # causal conditions: the anchor's keys/values once per frame
            cache = ConditionCache(s["reference_kv"])
            cache.anchor = self.generator.anchor_kv(cond, cache.reference)
            kw = {"cache": cache}
        else:
            kw = {"reference_tokens": s["reference_tokens"]}
        latent = self.sampler.sample(self.generator, noise, cond, **kw)
        return decode(self.vae, latent.to(self.vae.dtype)).float()

    def stream(self, Ks: Tensor, c2ws: Tensor) -> Iterator[Tensor]:
        """Frames ``[3, H, W]`` one by one along a path ``Ks [F, 3, 3]`` (or one ``[3, 3]``),
        ``c2ws [F, 4, 4]``; the scene's cached parts are reused for every frame."""
        if Ks.ndim == 2:
            Ks = Ks.expand(c2ws.shape[0], 3, 3)
        for K, c2w in zip(Ks, c2ws):
            yield self.render(K, c2w)

    def render_path(self, Ks: Tensor, c2ws: Tensor) -> Tensor:
        """All frames of a path: ``[F, 3, H, W]``."""
        return torch.stack(list(self.stream(Ks, c2ws)))
