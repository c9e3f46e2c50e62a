"""Joint multi-scale DDPM sampling of a zoom stack (Powers of Ten §4.3, Alg. 2) and its ablations.

Per step ``t → s`` (modes ``joint`` and ``naive_average``):

1. one batched denoiser call over all ``N`` levels, conditional and unconditional halves in the
   same batch (classifier-free guidance ``ε̂ = ε_u + w (ε_c − ε_u)``; the paper's ``ω`` is
   ``w − 1``), and ``x̂_i = (z_i − σ_t ε̂_i) / α_t``;
2. optional photograph guidance (Eq. 1, ``PhotoGuidance``) on the ``x̂_i``;
3. blending of the ``x̂_i`` into the stack ``L`` (Laplacian multi-resolution, or naive averaging);
4. re-rendering ``Π_image(L; i)`` and a DDPM update of every ``z_i`` towards it with the rendered
   noise ``Π_noise(E; i)`` of a fresh ``E``.

This is Alg. 2 with its loop rotated (Alg. 2 starts from ``L_T = 0`` and updates before it
denoises). The initial ``z_T`` is ``Π_noise(E_T)`` when noise is rendered (each ``z_{i,T}`` is still
``N(0, I)``), else i.i.d. per level.

Ablations (Fig. 10): ``independent`` — no stack, each level its own DDPM chain with independent
noise; ``iterative`` — levels take turns (finest first) with one single-level step each, written
into the stack and updated towards their render; ``naive_average`` — pixel averaging instead of
Laplacian blending; ``noise="independent"`` — no shared noise.

The denoiser is any ε-predicting callable ``(z [B, C, H, W], t [B] long, embeds [B, ...]) ->
ε [B, C, H, W]`` (``models.zoom.denoisers`` wraps diffusers UNets/transformers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .blend import blend_multires, blend_naive
from .ddpm import DDPMSchedule
from .photo import PhotoGuidance
from .stack import render_image, render_images, render_noises

Denoiser = Callable[..., Tensor]  # (z [B,C,H,W], t [B], embeds [B,...], [mask [B,L]]) -> ε
Cond = tuple[Tensor, Tensor | None]  # (embeds [n, ...], attention mask [n, L] or None)
MODES = ("joint", "independent", "iterative", "naive_average")
NOISES = ("rendered", "independent")
COMPILE_MODES = (False, True, "cudagraphs")
TIMING_KEYS = ("denoiser", "photo", "blend_render", "noise", "update")


@dataclass
class ZoomSample:
    """Result of a sampling run.

    layers ``[N, C, H, W]``: the zoom stack (``independent``: the per-level samples);
    images ``[N, C, H, W]``: ``Π_image(L; i)`` (``independent``: the samples themselves);
    samples ``[N, C, H, W]``: the denoiser's clean estimates ``x̂_i`` of the last step, before
    photo guidance and blending — the measure of whether the chains themselves agree;
    nfe: denoiser calls; timings: seconds spent in ``denoiser`` and in ``consolidate`` (photo,
    blending, rendering, noise, DDPM updates), filled when ``profile=True``.
    """

    layers: Tensor
    images: Tensor
    samples: Tensor
    nfe: int
    timings: dict[str, float] = field(default_factory=dict)


class JointZoomSampler:
    """Samples an ``N``-level zoom stack at zoom factor ``p`` with an ε-prediction denoiser.

    mode: one of ``MODES``; noise: ``rendered`` | ``independent`` (default: rendered, except for
    ``independent`` mode); guidance_scale ``w`` (1 = no CFG); photo: ``PhotoGuidance`` or None;
    sigma: the zoom prefilter's σ (``stack.step_kernel``); clip_x0: clamp ``x̂`` to ±clip_x0
    (pixel-space models) or None; compile_consolidation: ``torch.compile`` the blending,
    re-rendering and noise rendering (worth it on a GPU, where they are launch-bound): ``True``
    (fused kernels) or ``"cudagraphs"`` (fused kernels replayed as CUDA graphs: one launch each).

    ``sample(..., profile=True)`` times (synchronised) ``denoiser``, ``photo``, ``blend_render``
    (multi-resolution blending + re-rendering: the joint sampler's own work), ``noise`` (drawing
    and, with rendered noise, rendering the next noise) and ``update`` (the DDPM step), in seconds.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        schedule: DDPMSchedule,
        num_levels: int,
        p: int = 2,
        mode: str = "joint",
        noise: str | None = None,
        num_steps: int = 50,
        guidance_scale: float = 7.5,
        photo: PhotoGuidance | None = None,
        sigma: float | None = None,
        clip_x0: float | None = None,
        compile_consolidation: bool | str = False,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        noise = noise or ("independent" if mode == "independent" else "rendered")
        if noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
        self.denoiser, self.schedule = denoiser, schedule
        self.N, self.p, self.mode, self.noise = num_levels, p, mode, noise
        self.num_steps, self.guidance_scale = num_steps, guidance_scale
        self.photo, self.sigma, self.clip_x0 = photo, sigma, clip_x0
        # blending + re-rendering and noise rendering are hundreds of small kernels per step:
        # torch.compile fuses them (shapes are fixed for a run, so they compile once)
        if compile_consolidation not in COMPILE_MODES:
            raise ValueError(f"compile_consolidation must be one of {COMPILE_MODES}")
        self._blend_render = self._blend_and_render
        self._render_noise = self._rendered_noise
        if compile_consolidation:
            graphs = compile_consolidation == "cudagraphs"
            mode = "reduce-overhead" if graphs else None
            blend = torch.compile(self._blend_and_render, dynamic=False, mode=mode)
            noise = torch.compile(self._rendered_noise, dynamic=False, mode=mode)
            self._blend_render = _graph_step(blend) if graphs else blend
            self._render_noise = _graph_step(noise) if graphs else noise

    # -- pieces ---------------------------------------------------------------------------------

    def consolidate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """One step's blending + re-rendering, as ``sample`` runs it (compiled when configured):
        observations ``[N, C, H, W]`` → (layers, their rendered images)."""
        return self._blend_render(x)

    def render_noise(self, e: Tensor) -> Tensor:
        """Π_noise of i.i.d. noise layers ``[N, C, H, W]``, as ``sample`` runs it."""
        return self._render_noise(e)

    def _eps(self, z: Tensor, t: int, cond: Cond, uncond: Cond | None) -> Tensor:
        """Guided ε for ``z`` ``[n, C, H, W]`` in one denoiser call (cond + uncond batched)."""
        n = z.shape[0]
        use_cfg = uncond is not None and self.guidance_scale != 1.0
        (e_in, m_in), z_in = cond, z
        if use_cfg:
            (e_u, m_u) = (_expand(x, n) for x in uncond)
            z_in, e_in = torch.cat([z, z]), torch.cat([e_in, e_u.to(e_in)])
            m_in = None if m_in is None else torch.cat([m_in, m_u.to(m_in)])
        tt = torch.full((z_in.shape[0],), t, dtype=torch.long, device=z.device)
        args = (z_in.to(self._model_dtype), tt, e_in) + (() if m_in is None else (m_in,))
        eps = self.denoiser(*args).to(z.dtype)
        if not use_cfg:
            return eps
        e_c, e_u = eps.chunk(2)
        return e_u + self.guidance_scale * (e_c - e_u)

    def _x0(self, z: Tensor, t: int, cond: Cond, uncond: Cond | None) -> Tensor:
        x = self.schedule.predict_x0(z, self._eps(z, t, cond, uncond), t)
        return x if self.clip_x0 is None else x.clamp(-self.clip_x0, self.clip_x0)

    def _noise(self, shape, gen, device, dtype) -> Tensor:
        e = torch.randn(shape, generator=gen, device=device, dtype=dtype)
        return self._render_noise(e) if self.noise == "rendered" else e

    def _rendered_noise(self, e: Tensor) -> Tensor:
        return render_noises(e, self.p, self.sigma)

    def _blend_and_render(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Observations ``[N, C, H, W]`` → (blended layers, their rendered images)."""
        layers = self._blend(x)
        return layers, render_images(layers, self.p, self.sigma)

    def _blend(self, x_hat: Tensor) -> Tensor:
        if self.mode == "naive_average":
            return blend_naive(x_hat, self.p)
        return blend_multires(x_hat, self.p, self.sigma)

    # -- sampling -------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        prompt_embeds: Tensor,
        shape: tuple[int, int, int],
        uncond_embeds: Tensor | None = None,
        prompt_mask: Tensor | None = None,
        uncond_mask: Tensor | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        model_dtype: torch.dtype | None = None,
        profile: bool = False,
    ) -> ZoomSample:
        """prompt_embeds ``[N, ...]`` (level ``i``'s prompt ``y_i``), uncond_embeds ``[1 or N, ...]``
        (None: no CFG), shape ``(C, H, W)``; prompt_mask ``[N, L]`` / uncond_mask ``[1 or N, L]``:
        text attention masks, passed to the denoiser as a 4th argument when given. The state is
        kept in ``dtype``, the denoiser is fed ``model_dtype`` (default ``dtype``)."""
        if prompt_embeds.shape[0] != self.N:
            raise ValueError(f"need {self.N} prompt embeddings, got {prompt_embeds.shape[0]}")
        if (prompt_mask is None) != (uncond_mask is None) and uncond_embeds is not None:
            raise ValueError("give both prompt_mask and uncond_mask, or neither")
        device = torch.device(device) if device is not None else prompt_embeds.device
        self._model_dtype = model_dtype or dtype
        self._timings = dict.fromkeys(TIMING_KEYS, 0.0)
        self._profile, self._sync = profile, device.type == "cuda"
        full = (self.N, *shape)
        z = self._noise(full, generator, device, dtype)
        ts = self.schedule.timesteps(self.num_steps).tolist()
        run = self._iterative if self.mode == "iterative" else self._parallel
        cond = (prompt_embeds.to(device), _to(prompt_mask, device))
        uncond = None
        if uncond_embeds is not None:
            uncond = (uncond_embeds.to(device), _to(uncond_mask, device))
        layers, samples, nfe = run(z, ts, cond, uncond, generator)
        if self.mode == "independent":
            images = layers
        else:
            images = render_images(layers, self.p, self.sigma)
        return ZoomSample(layers, images, samples, nfe, dict(self._timings) if profile else {})

    def _tick(self, key: str, t0: float) -> float:
        if self._profile:
            if self._sync:
                torch.cuda.synchronize()
            now = time.perf_counter()
            self._timings[key] += now - t0
            return now
        return t0

    def _parallel(self, z, ts, cond, uncond, gen):
        """``joint`` / ``naive_average`` / ``independent``: one batched call per step."""
        layers = x_hat = z
        t0 = self._tick("noise", time.perf_counter())
        for k, t in enumerate(ts):
            s = ts[k + 1] if k + 1 < len(ts) else -1
            x_hat = self._x0(z, t, cond, uncond)
            t0 = self._tick("denoiser", t0)
            x = x_hat if self.photo is None else self.photo.fit(x_hat, None, self.p, self.sigma)
            t0 = self._tick("photo", t0)
            if self.mode == "independent":
                layers = x0 = x
            else:
                layers, x0 = self._blend_render(x)
            t0 = self._tick("blend_render", t0)
            noise = self._noise(z.shape, gen, z.device, z.dtype) if s >= 0 else None
            t0 = self._tick("noise", t0)
            z = self.schedule.step(z, x0, t, s, noise)
            t0 = self._tick("update", t0)
        return layers, x_hat, len(ts)

    def _iterative(self, z, ts, cond, uncond, gen):
        """``iterative``: per step, levels ``N-1 … 0`` in turn, one single-level call each."""
        layers = torch.zeros_like(z)
        samples = torch.zeros_like(z)
        z = z.clone()
        t0 = self._tick("noise", time.perf_counter())
        for k, t in enumerate(ts):
            s = ts[k + 1] if k + 1 < len(ts) else -1
            noise = self._noise(z.shape, gen, z.device, z.dtype) if s >= 0 else None
            t0 = self._tick("noise", t0)
            for i in range(self.N - 1, -1, -1):
                x_hat = self._x0(z[i : i + 1], t, _row(cond, i), _row(uncond, i))
                t0 = self._tick("denoiser", t0)
                samples[i] = x_hat[0]
                if self.photo is not None:
                    x_hat = self.photo.fit(x_hat, [i], self.p, self.sigma)
                layers[i] = x_hat[0]
                x0 = render_image(layers, i, self.p, self.sigma)
                t0 = self._tick("blend_render", t0)
                z[i] = self.schedule.step(z[i], x0, t, s, None if noise is None else noise[i])
                t0 = self._tick("update", t0)
        return layers, samples, len(ts) * self.N


def _graph_step(fn):
    """``fn`` compiled with CUDA graphs, starting a new graph step at every call; its outputs are
    copied out of the graph's buffers, which the next replay overwrites."""

    def call(*args):
        torch.compiler.cudagraph_mark_step_begin()
        out = fn(*args)
        return tuple(t.clone() for t in out) if isinstance(out, tuple) else out.clone()

    return call


def _to(x: Tensor | None, device) -> Tensor | None:
    return None if x is None else x.to(device)


def _expand(x: Tensor | None, n: int) -> Tensor | None:
    """Rows ``[1 or n, ...]`` -> ``[n, ...]``."""
    return x if x is None or x.shape[0] == n else x.expand(n, *x.shape[1:])


def _row(c: Cond | None, i: int) -> Cond | None:
    """Level ``i``'s row of a ``[1 or N, ...]`` condition (row 0 when shared)."""
    if c is None:
        return None
    return tuple(None if x is None else x[i : i + 1] if x.shape[0] > 1 else x[:1] for x in c)
