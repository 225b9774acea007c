"""What the Glow page shows, computed from a trained `engine.models.glow.Glow`: sample grids at several
temperatures from one set of latents, an exact encode -> decode round trip, interpolation in latent space,
the multi-scale split (keep the coarse latent, redraw the fine one) and every layer's state.

Images are (N, H*W) rows in [0, 1] stored as k/256, as in the engine's MNIST loader.

References: Kingma & Dhariwal (2018), "Glow", NeurIPS (reduced-temperature sampling, latent
interpolation, sec. 5); Dinh, Sohl-Dickstein & Bengio (2017), "Real NVP", ICLR (multi-scale latents).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from engine.models.glow import Glow
from engine.models.vae import latent_path


def latent_vector(zs: list[torch.Tensor]) -> torch.Tensor:
    """Latents per level (each (N, C_i, H_i, W_i)) -> one row per image (N, D), D = H*W numbers."""
    return torch.cat([z.flatten(1) for z in zs], 1)


def latents_from_vector(model: Glow, v: torch.Tensor) -> list[torch.Tensor]:
    """The inverse of `latent_vector`: (N, D) -> latents per level in `model.flow.z_shapes`."""
    zs, start = [], 0
    for shape in model.flow.z_shapes:
        size = math.prod(shape)
        zs.append(v[:, start:start + size].reshape(len(v), *shape))
        start += size
    return zs


@torch.no_grad()
def temperature_grids(model: Glow, n: int, temperatures: list[float], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples from ONE draw of standard-normal latents (seeded) scaled by each temperature, decoded and
    quantized: (len(temperatures), n, H*W) in [0, 1], and how many samples per temperature overflowed (a
    far-out latent can reach an inverse coupling whose scale is ~0; their pixels are set to 0). Temperature 0
    decodes the all-zero latent."""
    generator = torch.Generator().manual_seed(seed)
    eps = [torch.randn(n, *s, generator=generator) for s in model.flow.z_shapes]
    grids = torch.stack([model.quantize(model.decode([t * e.to(model.device) for e in eps]))
                         for t in temperatures]).cpu()
    bad = ~torch.isfinite(grids)
    return torch.where(bad, 0.0, grids).numpy(), bad.any(-1).sum(-1).numpy()


@torch.no_grad()
def round_trip(model: Glow, x: torch.Tensor) -> dict:
    """Encode 8-bit digits x (N, H*W) at their bin centres and decode them back: the latents per level
    (numpy, (N, C_i, H_i, W_i)), the continuous reconstruction (N, H*W), its largest error against the
    encoded y (float32 arithmetic), whether the re-quantized 8-bit images equal x exactly, and each digit's
    bits/dim terms (fixed dequantization seed)."""
    y = model.bin_centres(x)
    zs = model.encode(y)
    y_back = model.decode(zs)
    terms = model.bits_per_dim_terms(x)
    return {"latents": [z.cpu().numpy() for z in zs], "reconstruction": y_back.cpu().numpy(),
            "max_error": float((y_back - y).abs().max()),
            "identical_8bit": bool(torch.equal(model.quantize(y_back), model.grey_levels(x) / 256)),
            "bits_per_dim": {k: v.cpu().numpy() for k, v in terms.items()}}


@torch.no_grad()
def interpolation(model: Glow, x_from: torch.Tensor, x_to: torch.Tensor, steps: int, *,
                  kind: str = "linear") -> np.ndarray:
    """Decode `steps` points on the path between the latents of two 8-bit digits (each (H*W,)), all levels
    together: (steps, H*W) in [0, 1]. `kind` is "linear" or "spherical" (see engine.models.vae.latent_path)."""
    v = latent_vector(model.encode(model.bin_centres(torch.stack([x_from, x_to]))))
    path = latent_path(v[0], v[1], steps, kind=kind)
    return model.quantize(model.decode(latents_from_vector(model, path))).cpu().numpy()


@torch.no_grad()
def redraw_fine(model: Glow, x: torch.Tensor, n: int, temperature: float, seed: int) -> np.ndarray:
    """Keep the top (coarsest) latent of digit x (H*W,) and draw every finer level's latent afresh at
    `temperature`: (n, H*W) in [0, 1]. What stays is what the coarse latent encodes."""
    zs = model.encode(model.bin_centres(x[None]))
    generator = torch.Generator().manual_seed(seed)
    fresh = [temperature * torch.randn(n, *z.shape[1:], generator=generator).to(z) for z in zs[:-1]]
    return model.quantize(model.decode([*fresh, zs[-1].expand(n, *zs[-1].shape[1:])])).cpu().numpy()


def _layer_label(step: dict) -> str:
    return "Logit" if step["level"] < 0 else f"level {step['level'] + 1} · {step['index']:>2} {step['layer']}"


@torch.no_grad()
def layer_states(model: Glow, x: torch.Tensor, *, generator: torch.Generator | None = None,
                 bins: int = 61) -> list[dict]:
    """Every intermediate state of the density direction for 8-bit digits x (N, H*W), dequantized with
    `generator` (the model's training input; at their bin centres if None, which leaves out the noise u that
    a good share of the latents' spread encodes).

    One dict per layer (the logit first): "label", "layer", "level", "shape" (C, H, W), "state" of the first
    digit (C, H, W) numpy, "coupling" (log s and t of the first digit, each (C_b, H, W) numpy) for couplings,
    "logdet_bpd" the running log-det of all digits averaged, in bits/dim (negated, as in the bits/dim terms),
    and "histogram" (counts (bins,), edges (bins + 1,)) of all digits' state values on [-4, 4] with the
    fraction outside, beside "gaussian" (the N(0, 1) mass of each bin): how Gaussian the state has become."""
    edges = np.linspace(-4, 4, bins + 1)
    gaussian = np.diff([0.5 * (1 + math.erf(e / math.sqrt(2))) for e in edges])
    out = []
    y = model.bin_centres(x) if generator is None else model.dequantize(x, generator)
    for step in model.trace(y):
        state = step["state"]
        values = state.flatten().cpu().double().numpy()
        counts, _ = np.histogram(values, edges)
        entry = {"label": _layer_label(step), "layer": step["layer"], "level": step["level"],
                 "shape": tuple(state.shape[1:]), "state": state[0].cpu().numpy(),
                 "logdet_bpd": float(-step["logdet"].double().mean() / (model.n_dims * math.log(2))),
                 "histogram": (counts / len(values), edges), "outside": float(np.mean(np.abs(values) > 4)),
                 "gaussian": gaussian, "std": float(values.std()), "mean": float(values.mean())}
        if step["layer"] == "Coupling":
            layer = _coupling_at(model, step)
            log_s, t = layer.scale_shift(step["input"][:1, :layer.kept])
            entry["coupling"] = (log_s[0].cpu().numpy(), t[0].cpu().numpy())
        out.append(entry)
    return out


def _coupling_at(model: Glow, step: dict):
    return model.flow.levels[step["level"]][step["index"]]
