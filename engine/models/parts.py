"""Part-based features on faces: two stacked sparse RBMs whose layer-1 units are face parts and whose
layer-2 units are groups of parts (the lecture's slide "Learning Part-Based Representations").

References:
- Lee, Grosse, Ranganath & Ng (2009), "Convolutional deep belief networks for scalable unsupervised
  learning of hierarchical representations" (the slide's figure: object parts and groups of parts on faces).
- Lee, Ekanadham & Ng (2008), "Sparse deep belief net model for visual area V2" (a target for each hidden
  unit's mean activation, enforced through its bias).
- Lee & Seung (1999), "Learning the parts of objects by non-negative matrix factorization" (non-negative
  weights can only add ink, never cancel it, so each unit keeps to one part).
- Hinton (2010), "A practical guide to training restricted Boltzmann machines" (linear Gaussian visible
  units with unit variance on standardized data).
- Hinton, Osindero & Teh (2006), "A fast learning algorithm for deep belief nets" (greedy stacking).

What makes parts appear on these faces (measured for issue 9): linear Gaussian visible units on
standardized intensities, non-negative weights and a sparsity target. Binary visible units, or signed
weights, give whole-face templates instead. The dense model reaches clean, local parts, so the
convolutional RBM with probabilistic max-pooling of Lee et al. (2009) is not built here.

Visible units see a face's *darkness*: v = (mean face - x) / s, with x the 25x25 intensities in [0, 1],
the mean face and the one overall standard deviation s taken over the training faces (binary visible
units see 1 - x as the probability of a dark pixel). With non-negative weights a unit can then only add
dark strokes: eyes, brows, nostrils, mouths, the shadow of a jaw line.

Layer 1 (Gaussian-Bernoulli RBM, unit variance), energies in nats:
    E(v, h) = ||v - b||^2 / 2 - v^T W h - a^T h,  p(h_j=1|v) = sigma(a_j + v^T W_:j),  p(v|h) = N(b + W h, I)
    F(v) = ||v - b||^2 / 2 - sum_j softplus(a_j + v^T W_:j)
(binary visible units: E = -v^T W h - b^T v - a^T h, as in engine.models.rbm).
Layer 2 is a binary RBM (W2, b2, a2) on layer 1's hidden units, trained on samples of p(h1|v).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.models.rbm import bernoulli
from engine.registry import register

VISIBLE_TYPES = ("gaussian", "binary")
TOP_SHARE = 0.4  # the last 40% of the epochs train layer 2 (layer 1 frozen)


@dataclass(frozen=True)
class PartsConfig:
    n_visible: int = 625
    n_hidden: int = 100  # layer 1: parts
    n_top: int = 24  # layer 2: groups of parts
    image_shape: tuple[int, int] = (25, 25)
    visible: str = "gaussian"  # "gaussian": linear units on standardized darkness; "binary": dark pixel on/off
    init_scale: float = 0.01  # initial weights uniform in [0, init_scale)
    sample_steps: int = 200  # Gibbs steps in the top RBM used by sample()

    def __post_init__(self) -> None:
        if self.visible not in VISIBLE_TYPES:
            raise ValueError(f"visible must be one of {', '.join(VISIBLE_TYPES)}, not {self.visible!r}")
        if self.image_shape[0] * self.image_shape[1] != self.n_visible:
            raise ValueError(f"image_shape {self.image_shape} does not hold {self.n_visible} pixels")


# --- the page's two measurements ----------------------------------------------------------------
def locality(filters: torch.Tensor, share: float = 0.1) -> torch.Tensor:
    """Share of each filter's mass sum|w| held by its top `share` of pixels: (F, D) -> (F,) in [share, 1].

    1 for a filter on a single pixel; `share` (0.1) for a flat one (exactly so when 10% of D is whole)."""
    mass = filters.abs()
    k = max(1, math.ceil(share * filters.shape[1]))
    top = mass.topk(k, dim=1).values.sum(1)
    return top / mass.sum(1).clamp_min(1e-12)


def dead_units(p: torch.Tensor, *, spread: float = 0.5) -> torch.Tensor:
    """Units whose p(h_j=1|v) never changes by `spread` across the images: p (N, F) -> bool (F,).

    Such a unit is off (or on) whatever the face, so it codes nothing: a unit that never switches on,
    or one whose weights an L1 penalty has shrunk to zero."""
    return (p.amax(0) - p.amin(0)) < spread


@register("parts", PartsConfig)
class PartsDBN(Model):
    """Layer 1 (W, b, a): parts; layer 2 (W2, b2, a2): groups of parts. Buffers `offset` (D,) and `scale`
    () turn intensities in [0, 1] into the standardized darkness the Gaussian visible units see."""

    dataset = "faces-25"  # engine.api.make_trainer: Olivetti training persons, flipped and shifted
    presets = {
        "bundled": {"config": {"n_hidden": 144, "n_top": 36},
                    "train": {"epochs": 100, "batch_size": 20, "lr": 0.005, "lr_top": 0.05, "sparsity": 0.05}},
        "page": {"config": {"n_hidden": 100, "n_top": 24},
                 "train": {"epochs": 80, "batch_size": 20, "lr": 0.005, "lr_top": 0.05, "sparsity": 0.05}},
        "tiny": {"config": {"n_visible": 16, "image_shape": (4, 4), "n_hidden": 6, "n_top": 3},
                 "train": {"epochs": 2, "batch_size": 8}},
    }

    def __init__(self, config: PartsConfig) -> None:
        super().__init__(config)
        D, H, T, s = config.n_visible, config.n_hidden, config.n_top, config.init_scale
        self.W = nn.Parameter(torch.rand(D, H) * s)
        self.b = nn.Parameter(torch.zeros(D))
        self.a = nn.Parameter(torch.zeros(H))
        self.W2 = nn.Parameter(torch.rand(H, T) * s)
        self.b2 = nn.Parameter(torch.zeros(H))
        self.a2 = nn.Parameter(torch.zeros(T))
        self.register_buffer("offset", torch.full((D,), 0.5))  # the mean training face (intensities)
        self.register_buffer("scale", torch.tensor(0.25))  # one standard deviation over all training pixels

    @property
    def gaussian(self) -> bool:
        return self.config.visible == "gaussian"

    # --- from pictures to visible units and back ----------------------------------------------
    def visible(self, x: torch.Tensor) -> torch.Tensor:
        """Intensities (B, D) in [0, 1] -> visible values: standardized darkness, or darkness in [0, 1]."""
        return (self.offset - x) / self.scale if self.gaussian else 1 - x

    def picture(self, v: torch.Tensor) -> torch.Tensor:
        """Visible values (B, D) -> intensities in [0, 1] (the inverse of `visible`, clipped)."""
        return (self.offset - v * self.scale if self.gaussian else 1 - v).clamp(0, 1)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Standardization from the training faces x (N, D); visible biases at the data's mean."""
        self.offset.copy_(x.mean(0))
        self.scale.copy_((x - x.mean(0)).std())
        mean = self.visible(x).mean(0)
        self.b.copy_(mean if self.gaussian else torch.log(mean.clamp(1e-3, 1 - 1e-3)) - torch.log1p(-mean.clamp(1e-3, 1 - 1e-3)))

    # --- layer 1: conditionals and energies ---------------------------------------------------
    def p_h(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j=1|v): (B, D) -> (B, H)."""
        return torch.sigmoid(torch.addmm(self.a, v, self.W))

    def v_mean(self, h: torch.Tensor) -> torch.Tensor:
        """E[v|h]: b + W h (Gaussian, unit variance) or sigma(b + W h) (binary): (B, H) -> (B, D)."""
        pre = torch.addmm(self.b, h, self.W.t())
        return pre if self.gaussian else torch.sigmoid(pre)

    def sample_v(self, h: torch.Tensor, generator=None) -> torch.Tensor:
        """v ~ p(v|h): (B, H) -> (B, D)."""
        mean = self.v_mean(h)
        if self.gaussian:
            return mean + torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return bernoulli(mean, generator)

    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) in nats: (B, D), (B, H) -> (B,)."""
        inter = ((v @ self.W) * h).sum(-1) + h @ self.a
        return 0.5 * ((v - self.b) ** 2).sum(-1) - inter if self.gaussian else -inter - v @ self.b

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) in nats: (B, D) -> (B,)."""
        visible = 0.5 * ((v - self.b) ** 2).sum(-1) if self.gaussian else -(v @ self.b)
        return visible - F.softplus(torch.addmm(self.a, v, self.W)).sum(-1)

    # --- layer 2: a binary RBM on h1 -------------------------------------------------------------
    def p_top(self, h: torch.Tensor) -> torch.Tensor:
        """p(h2_k=1|h1): (B, H) -> (B, T)."""
        return torch.sigmoid(torch.addmm(self.a2, h, self.W2))

    def p_h_down(self, top: torch.Tensor) -> torch.Tensor:
        """p(h1_j=1|h2) in the top RBM: (B, T) -> (B, H)."""
        return torch.sigmoid(torch.addmm(self.b2, top, self.W2.t()))

    def top_free_energy(self, h: torch.Tensor) -> torch.Tensor:
        """The top RBM's free energy of h1 states in nats: (B, H) -> (B,)."""
        return -(h @ self.b2) - F.softplus(torch.addmm(self.a2, h, self.W2)).sum(-1)

    # --- the model contract -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, *, generator=None, steps: int | None = None) -> torch.Tensor:
        """Faces from the stack (a DBN): Gibbs in the top RBM from random h1, then one down-pass to the
        mean pixels, as intensities in [0, 1]: (n, D)."""
        h = bernoulli(torch.full((n, self.config.n_hidden), 0.5, device=self.device), generator)
        for _ in range(steps or self.config.sample_steps):
            top = bernoulli(self.p_top(h), generator)
            h = bernoulli(self.p_h_down(top), generator)
        return self.picture(self.v_mean(h))

    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """CD-1 surrogates of both layers: F(data) - F(one Gibbs step); its gradient is CD-1's."""
        v = self.visible(batch)
        with torch.no_grad():
            h = bernoulli(self.p_h(v), generator)
            v_model = self.sample_v(h, generator)
            top = bernoulli(self.p_top(h), generator)
            h_model = bernoulli(self.p_h_down(top), generator)
        gap1 = self.free_energy(v).mean() - self.free_energy(v_model).mean()
        gap2 = self.top_free_energy(h).mean() - self.top_free_energy(h_model).mean()
        return {"loss": gap1 + gap2, "free_energy_gap": gap1.detach(), "top_free_energy_gap": gap2.detach()}

    def make_optimizers(self, **hparams) -> list["GreedyParts"]:
        return [GreedyParts(self, **hparams)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (trainer,) = optimizers
        return trainer.step(batch, generator=generator)

    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out numbers: mean-field reconstruction error (per visible unit), the median locality of
        the parts, the fraction of dead parts on these faces, and both layers' mean activations."""
        v = self.visible(x)
        p = self.p_h(v)
        return {"reconstruction_error": float(((v - self.v_mean(p)) ** 2).mean()),
                "locality_median": float(locality(self.W.t()).median()),
                "dead_fraction": float(dead_units(p).float().mean()),
                "mean_activation": float(p.mean()), "top_mean_activation": float(self.p_top(p).mean())}

    @torch.no_grad()
    def preview(self, n: int = 64):
        """The first n parts as pictures (numpy (n, H, W) in [0, 1])."""
        return self.part_images(torch.arange(min(n, self.config.n_hidden))).numpy()

    # --- views used by the parts page -----------------------------------------------------------
    @torch.no_grad()
    def part_images(self, units: torch.Tensor | None = None) -> torch.Tensor:
        """Layer-1 filters as pictures (n, H, W) in [0, 1], each scaled to its own largest weight.

        Non-negative weights: white is zero, black the largest weight (ink). Signed weights: grey is
        zero, darker positive (more ink), lighter negative."""
        W = self.W.t() if units is None else self.W.t()[units]  # (n, D)
        return self._pictures(W, signed=bool((self.W < 0).any()))

    def _pictures(self, W: torch.Tensor, *, signed: bool) -> torch.Tensor:
        scale = W.abs().amax(1, keepdim=True).clamp_min(1e-12)
        ink = 0.5 + 0.5 * W / scale if signed else W / scale
        return (1 - ink).reshape(-1, *self.config.image_shape).float().cpu()

    @torch.no_grad()
    def group(self, k: int, n_parts: int) -> dict[str, torch.Tensor]:
        """Layer-2 unit k: its `n_parts` strongest layer-1 parts (units (n,), weights W2 (n,)) and its
        picture as the positive-weighted sum of all layer-1 filters, sum_j max(W2_jk, 0) W_:j."""
        w = self.W2[:, k]
        top = w.topk(n_parts)
        composite = self.W @ w.clamp_min(0)  # (D,)
        return {"units": top.indices, "weights": top.values,
                "picture": self._pictures(composite[None], signed=bool((composite < 0).any()))[0]}

    @torch.no_grad()
    def explain(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One face x (D,) through the stack: p(h1|v) (H,), p(h2|p(h1)) (T,) and the mean-field
        reconstruction from the parts, as intensities (D,)."""
        p = self.p_h(self.visible(x[None]))
        return {"parts": p[0], "groups": self.p_top(p)[0], "reconstruction": self.picture(self.v_mean(p))[0]}

    @torch.no_grad()
    def measure(self, x: torch.Tensor) -> dict:
        """The card's and page's figures on faces x (N, D): locality of every part, dead units of both layers."""
        p = self.p_h(self.visible(x))
        loc = locality(self.W.t())
        dead, dead_top = dead_units(p), dead_units(self.p_top(p))
        return {"locality": loc.tolist(), "locality_median": float(loc.median()),
                "dead_fraction": float(dead.float().mean()), "dead_units": dead.nonzero().flatten().tolist(),
                "top_dead_fraction": float(dead_top.float().mean()), "mean_activation": float(p.mean()),
                "top_mean_activation": float(self.p_top(p).mean()), "faces": len(x)}


class GreedyParts:
    """Greedy layer-wise CD-1 for the parts stack: layer 1 for the first (1 - top_share) of the epochs,
    then layer 2 on samples of p(h1|v) with layer 1 frozen. Plain momentum SGD, no autograd.

    Options (the page's controls): `nonnegative` projects the weights onto W >= 0 after every update;
    `sparsity` is a target q for each hidden unit's mean activation, pushed through its bias by
    sparsity_cost * (q - running mean) (Lee et al. 2008; 0 turns it off); `l1` subtracts l1 * sign(W)
    from the weight gradient. Dead units are not revived but reported (`PartsDBN.measure`): re-drawing
    them (tried) made no difference with the recommended settings and kept slow binary units from learning."""

    def __init__(self, model: PartsDBN, *, lr: float = 0.01, lr_top: float = 0.05, momentum: float = 0.9,
                 nonnegative: bool = True, sparsity: float = 0.05, sparsity_cost: float = 1.0,
                 sparsity_top: float = 0.1, l1: float = 0.0, top_share: float = TOP_SHARE) -> None:
        self.model, self.lr, self.lr_top, self.momentum = model, lr, lr_top, momentum
        self.nonnegative, self.sparsity, self.sparsity_cost = nonnegative, sparsity, sparsity_cost
        self.sparsity_top, self.l1, self.top_share = sparsity_top, l1, top_share
        self.layer = 1
        self.velocity = [torch.zeros_like(p) for p in (model.W, model.b, model.a, model.W2, model.b2, model.a2)]
        self.running = [torch.full_like(model.a, sparsity or 0.1), torch.full_like(model.a2, sparsity_top or 0.1)]

    def set_progress(self, fraction: float) -> None:
        """Called at each epoch start: layer 1 first, layer 2 for the last `top_share` of the epochs."""
        self.layer = 2 if fraction >= 1 - self.top_share - 1e-9 else 1

    @torch.no_grad()
    def step(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """One CD-1 update of the current layer from a batch of faces x (B, D) in [0, 1]."""
        m = self.model
        v = m.visible(x)
        if not m.gaussian:
            v = bernoulli(v, generator)
        if self.layer == 1:
            ph = m.p_h(v)  # (B, H)
            v_neg = m.v_mean(bernoulli(ph, generator))  # mean-field reconstruction (B, D)
            out = self._cd(v, ph, v_neg, m.p_h(v_neg), (m.W, m.b, m.a), 0, self.lr, self.sparsity)
            return {**out, "layer": 1.0}
        h = bernoulli(m.p_h(v), generator)  # layer 2 trains on samples of p(h1|v)
        ph2 = m.p_top(h)
        h_neg = m.p_h_down(bernoulli(ph2, generator))
        out = self._cd(h, ph2, h_neg, m.p_top(h_neg), (m.W2, m.b2, m.a2), 3, self.lr_top, self.sparsity_top)
        return {**out, "layer": 2.0}

    def _cd(self, v, ph, v_neg, ph_neg, params, first: int, lr: float, target: float) -> dict[str, float]:
        """Momentum update of (W, b, a) = params from the positive and negative statistics."""
        W, b, a = params
        vel_W, vel_b, vel_a = self.velocity[first:first + 3]
        B = len(v)
        grad_W = (v.t() @ ph - v_neg.t() @ ph_neg) / B  # (D, H): E_data[v h^T] - E_recon[v h^T]
        grad_a = (ph - ph_neg).mean(0)
        running = self.running[first // 3]
        running.mul_(0.9).add_(ph.mean(0), alpha=0.1)
        if target:
            grad_a = grad_a + self.sparsity_cost * (target - running)
        if self.l1:
            grad_W = grad_W - self.l1 * W.sign()
        vel_W.mul_(self.momentum).add_(grad_W, alpha=lr)
        vel_b.mul_(self.momentum).add_((v - v_neg).mean(0), alpha=lr)
        vel_a.mul_(self.momentum).add_(grad_a, alpha=lr)
        for p, vel in zip(params, (vel_W, vel_b, vel_a)):
            p.add_(vel)
        if self.nonnegative:
            W.clamp_(min=0)
        return {"reconstruction_error": float(((v - v_neg) ** 2).mean()), "mean_activation": float(ph.mean())}

    def state_dict(self) -> dict:
        return {"velocity": self.velocity, "running": self.running, "layer": self.layer}

    def load_state_dict(self, state: dict) -> None:
        dev = self.model.W.device
        self.velocity = [v.to(dev) for v in state["velocity"]]
        self.running = [r.to(dev) for r in state["running"]]
        self.layer = int(state["layer"])


@torch.no_grad()
def evaluate(model: PartsDBN) -> dict:
    """The card's figures: locality and dead units on all 400 Olivetti faces, and the mean-field
    reconstruction error of the 80 test faces (persons 32-39, unseen in training)."""
    from engine.data import faces

    test = model.visible(faces.images("test"))
    error = ((test - model.v_mean(model.p_h(test))) ** 2).mean()
    return {"parts": {**model.measure(faces.all_images()), "faces_measured": "all 400 Olivetti faces",
                      "dead_rule": "p(h=1|v) changes by less than 0.5 across the faces",
                      "locality_rule": "share of sum|w| in the filter's top 10% of pixels (63 of 625)",
                      "test_reconstruction_error": float(error),
                      "reconstruction_unit": ("squared error per pixel of the standardized darkness, mean-field"
                                              if model.gaussian else "squared error per pixel of p(dark)"),
                      "split": faces.describe("test")}}
