"""MADE on binarized MNIST: an autoencoder whose weight masks make output i depend only on the inputs that
come before pixel i in an ordering, so the outputs are the conditionals p(x_i = 1 | x_<i) of an exact,
normalized autoregressive model, computed for all pixels in one pass.

References:
- Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution Estimation",
  ICML (unit degrees m(k), the masks M^W = [m^l(k') >= m^(l-1)(k)] and M^V = [m^0(d) > m^L(k)], the direct
  connection, connectivity-agnostic training and the mask ensemble: 88.04 nats, 1 hidden layer, 32 masks).
- Uria, Cote, Gregor, Murray & Larochelle (2016), "Neural Autoregressive Distribution Estimation", JMLR
  (ensembles as mixtures: p(x) = 1/K sum_k p_k(x)).

Conventions (this file and engine/models/nade.py): images are (B, D) rows of 0/1 floats, D = H * W; an
ordering is a permutation `order` of 0..D-1 listing the pixels in sampling order; `rank[d]` is the position
of pixel d in it (0-based); the input degree of pixel d is m^0(d) = rank[d] + 1 (1..D). `logits(x)` is
(B, D) indexed by PIXEL (not by position in the ordering). Log-likelihoods are in nats per image; bits/dim
= nats / (D ln 2). Mask k of the ensemble (k = 0, 1, ...) draws its hidden degrees with seed mask_seed + k;
the ordering is the same for every mask.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.data import mnist
from engine.models.base import Model
from engine.optim import scheduled_adam, scheduled_step
from engine.registry import register

ORDERINGS = ("natural", "random", "explicit")


@dataclass(frozen=True)
class MADEConfig:
    image_shape: tuple[int, int] = (28, 28)  # (H, W); D = H * W binary pixels
    hidden: tuple[int, ...] = (500,)  # hidden layer sizes (ReLU); the bundled net is 784-500-784
    ordering: str = "natural"  # "natural" (raster), "random" (a permutation drawn with order_seed), "explicit"
    order_seed: int = 0  # seed of the "random" ordering
    permutation: tuple[int, ...] = ()  # with ordering="explicit": the pixels in sampling order
    mask_seed: int = 0  # connectivity: mask k draws its hidden degrees with seed mask_seed + k
    n_masks: int = 1  # masks cycled through in training (connectivity-agnostic training when > 1)
    direct: bool = False  # a masked direct input -> output connection (Germain et al.'s optional one)
    seed: int = 0  # initial weights


@dataclass(frozen=True)
class Connectivity:
    """One mask of a MADE: degrees per layer [m^0 (D,), m^1 (H_1,), ..., m^L (H_L,)]; masks per layer as 0/1
    float tensors (out, in): hidden layers [(H_1, D), (H_2, H_1), ...] then the output layer (D, H_L); the
    direct connection's (D, D) mask or None; `dependency` (D, D) bool: output i depends on input j (pixels)."""
    degrees: list[torch.Tensor]
    masks: list[torch.Tensor]
    direct: torch.Tensor | None
    dependency: torch.Tensor


PRESETS = {
    "tiny": {"config": {"hidden": (32,)},
             "train": {"epochs": 1, "batch_size": 100, "lr": 1e-3, "max_steps": 20}},
    # The issue's 784-500-784 with Adam and batch 100, plus Germain et al.'s direct input -> output connection, at
    # 5e-3 decayed along a cosine to 0 over the 10 epochs. Measured on 2,000 test digits after 1,000 / 2,000 steps
    # (a scratch run of the same recipe): 95.0 / 92.7 nats; without the direct connection 106.6 / 103.8, and the
    # issue's constant 1e-3 without it 115.0 after 1,000 steps (102.3 after all 10 epochs).
    "bundled": {"config": {"hidden": (500,), "direct": True},
                "train": {"epochs": 10, "batch_size": 100, "lr": 5e-3, "total_steps": 5000}},
    # Connectivity-agnostic training over 8 masks, for the page's 1..K mask-ensemble curve.
    "ensemble": {"config": {"hidden": (500,), "n_masks": 8, "direct": True},
                 "train": {"epochs": 20, "batch_size": 100, "lr": 5e-3, "total_steps": 10000}},
}


# --- orderings, degrees and masks (also used by the page, through engine.api) -------------------------------
def make_ordering(n: int, ordering: str = "natural", *, order_seed: int = 0,
                  permutation: tuple[int, ...] = ()) -> torch.Tensor:
    """The pixels 0..n-1 in sampling order, (n,) int64: raster order, a seeded random permutation, or
    `permutation` itself (checked to be a permutation of 0..n-1)."""
    if permutation and ordering != "explicit":
        raise ValueError(f"a permutation is only used with ordering='explicit', not {ordering!r}")
    if ordering == "natural":
        return torch.arange(n)
    if ordering == "random":
        return torch.randperm(n, generator=torch.Generator().manual_seed(order_seed))
    if ordering == "explicit":
        order = torch.as_tensor(permutation, dtype=torch.long)
        if order.shape != (n,) or not torch.equal(order.sort().values, torch.arange(n)):
            raise ValueError(f"permutation must list each of the {n} pixels exactly once")
        return order
    raise ValueError(f"unknown ordering {ordering!r}; use one of {ORDERINGS}")


def ranks(order: torch.Tensor) -> torch.Tensor:
    """rank[d] = position of pixel d in `order` (the inverse permutation), (D,) int64."""
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return rank


def sample_degrees(order: torch.Tensor, hidden: tuple[int, ...], mask_seed: int) -> list[torch.Tensor]:
    """Unit degrees of every layer: inputs m^0(d) = rank[d] + 1 in 1..D; hidden units of layer l uniform on
    {min m^(l-1), ..., D - 1} (Germain et al. 2015, sec. 4), drawn with a generator seeded by `mask_seed`."""
    n = len(order)
    g = torch.Generator().manual_seed(mask_seed)
    degrees = [ranks(order) + 1]
    for size in hidden:
        low = int(degrees[-1].min())
        degrees.append(torch.randint(low, n, (size,), generator=g))
    return degrees


def masks_from_degrees(degrees: list[torch.Tensor], *,
                       direct: bool = False) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Masks (out, in) as 0/1 floats: hidden layer l connects unit k' of layer l-1 to unit k when
    m^l(k) >= m^(l-1)(k'); output d connects hidden unit k when m^0(d) > m^L(k); the direct mask connects
    input j to output d when m^0(d) > m^0(j). Returns ([hidden masks..., output mask], direct mask or None)."""
    masks = [(later[:, None] >= earlier[None, :]).float() for earlier, later in zip(degrees[:-1], degrees[1:])]
    masks.append((degrees[0][:, None] > degrees[-1][None, :]).float())  # (D, H_L)
    return masks, ((degrees[0][:, None] > degrees[0][None, :]).float() if direct else None)


def dependency_matrix(masks: list[torch.Tensor], direct: torch.Tensor | None = None) -> torch.Tensor:
    """(D, D) bool: output i depends on input j, i.e. some path of allowed connections joins them (the
    product of the masks is non-zero, or the direct mask allows it)."""
    reach = masks[0]  # (H_1, D): which inputs each unit sees
    for mask in masks[1:]:
        reach = ((mask @ reach) > 0).float()  # (out, D)
    return reach.bool() if direct is None else reach.bool() | direct.bool()


def connectivity(order: torch.Tensor, hidden: tuple[int, ...], mask_seed: int, *, direct: bool = False) -> Connectivity:
    """Degrees, masks and dependency matrix of one MADE mask (all on the CPU)."""
    degrees = sample_degrees(order, hidden, mask_seed)
    masks, direct_mask = masks_from_degrees(degrees, direct=direct)
    return Connectivity(degrees, masks, direct_mask, dependency_matrix(masks, direct_mask))


def in_order(matrix: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """A (D, D) pixel-by-pixel matrix with rows and columns put in sampling order: a dependency matrix
    becomes strictly lower-triangular."""
    return matrix[order][:, order]


# --- likelihood helpers ---------------------------------------------------------------------------------------
def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log prod_i Bernoulli(x_i; sigmoid(logit_i)): (B, D), (B, D) -> (B,) nats."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def independent_bernoulli_nll(train: torch.Tensor, test: torch.Tensor, *, eps: float = 1e-3) -> float:
    """The baseline an autoregressive model must beat: every pixel independent, p_i = the training mean of
    pixel i (grey levels or binary images; clamped to [eps, 1 - eps]). Mean test NLL in nats per image."""
    p = train.double().mean(0).clamp(eps, 1 - eps)
    x = test.double()
    return float(-(x * p.log() + (1 - x) * (1 - p).log()).sum(1).mean())


def marginal_logits(images: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """logit of each pixel's training mean (clamped to [eps, 1 - eps]): (N, D) -> (D,), the output biases
    that start a model at the independent-Bernoulli baseline instead of 784 ln 2 nats."""
    return torch.logit(images.double().mean(0).clamp(eps, 1 - eps)).float()


def uniforms_for(n: int, n_dims: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n, D) uniforms in [0, 1) from `generator` (the global RNG if None); pixel d is 1 when u_d < p_d."""
    device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, n_dims, generator=generator, device=device)


@register("made", MADEConfig)
class MADE(Model):
    """Masked autoencoder (B, D) -> (B, D) Bernoulli logits; ReLU hidden layers; exact log_prob in nats."""

    presets = PRESETS
    dataset = "mnist-binary"

    def __init__(self, config: MADEConfig) -> None:
        super().__init__(config)
        h, w = config.image_shape
        if (h < 1 or w < 1 or h * w < 2 or not config.hidden or min(config.hidden) < 1 or config.n_masks < 1
                or config.mask_seed < 0 or config.order_seed < 0 or config.seed < 0):
            raise ValueError(f"invalid made config {config}: image with >= 2 pixels, at least one hidden layer of "
                             f">= 1 units, n_masks >= 1, seeds >= 0")
        self.n_dims = h * w
        self.register_buffer("order", make_ordering(self.n_dims, config.ordering, order_seed=config.order_seed,
                                                    permutation=config.permutation), persistent=False)
        sizes = (self.n_dims, *config.hidden, self.n_dims)
        with torch.random.fork_rng(devices=[]):  # seeded weights without touching the global RNG
            torch.manual_seed(config.seed)
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.direct = nn.Linear(self.n_dims, self.n_dims, bias=False) if config.direct else None
        self._connectivity: dict[int, Connectivity] = {}
        self._device_masks: dict[tuple, list[torch.Tensor]] = {}
        self.training_steps = 0  # train_step's counter, which picks the mask when n_masks > 1

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Output biases = logits of the training pixel means (N, D) (called by api.new_model_for_training)."""
        self.layers[-1].bias.copy_(marginal_logits(images))

    # --- masks ----------------------------------------------------------------------------------------------
    def connectivity(self, k: int = 0) -> Connectivity:
        """Degrees, masks and dependency matrix of mask k (hidden degrees drawn with seed mask_seed + k)."""
        if k not in self._connectivity:
            c = self.config
            self._connectivity[k] = connectivity(self.order.cpu(), c.hidden, c.mask_seed + k, direct=c.direct)
        return self._connectivity[k]

    def _masks(self, k: int) -> list[torch.Tensor]:
        """Mask k's layer masks (then the direct mask, if any) on the weights' device and dtype."""
        weight = self.layers[0].weight
        key = (k, weight.device, weight.dtype)
        if key not in self._device_masks:
            conn = self.connectivity(k)
            extra = [conn.direct] if conn.direct is not None else []
            self._device_masks[key] = [m.to(weight) for m in conn.masks + extra]
        return self._device_masks[key]

    def masked_weights(self, k: int = 0) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """W * mask for every layer under mask k, and the masked direct weight (or None)."""
        masks = self._masks(k)
        weights = [layer.weight * m for layer, m in zip(self.layers, masks)]
        return weights, (self.direct.weight * masks[-1] if self.direct is not None else None)

    # --- the conditionals -----------------------------------------------------------------------------------
    def logits(self, x: torch.Tensor, k: int = 0) -> torch.Tensor:
        """All conditionals in one pass under mask k: logit of p(x_i = 1 | x_<i), (B, D) -> (B, D) by pixel."""
        return self._forward(x, *self.masked_weights(k))

    def _forward(self, x: torch.Tensor, weights: list[torch.Tensor], direct: torch.Tensor | None) -> torch.Tensor:
        """The logits (B, D) of x (B, D) with given masked weights (see masked_weights)."""
        h = x
        for layer, weight in zip(self.layers[:-1], weights[:-1]):
            h = torch.relu(F.linear(h, weight, layer.bias))  # (B, H_l)
        out = F.linear(h, weights[-1], self.layers[-1].bias)  # (B, D)
        return out + F.linear(x, direct) if direct is not None else out

    def log_prob_per_mask(self, x: torch.Tensor, masks: int) -> torch.Tensor:
        """log p_k(x) for masks k = 0..masks-1: (B, D) -> (masks, B) nats."""
        return torch.stack([bernoulli_log_prob(x, self.logits(x, k)) for k in range(masks)])

    def log_prob(self, x: torch.Tensor, masks: int = 1) -> torch.Tensor:
        """Exact log p(x) in nats, (B, D) -> (B,). With masks = K > 1, the ensemble as a mixture:
        log (1/K) sum_k p_k(x) (log-mean-exp of the joint probabilities, never averaged logits)."""
        per_mask = self.log_prob_per_mask(x, masks)
        return torch.logsumexp(per_mask, 0) - math.log(masks)

    @torch.no_grad()
    def ensemble_curve(self, x: torch.Tensor, masks: int) -> list[float]:
        """Mean NLL (nats per image) of the mixture of the first K masks for K = 1..masks, on images x."""
        per_mask = self.log_prob_per_mask(x, masks).double()  # (masks, B)
        return [float(-(torch.logsumexp(per_mask[:k], 0) - math.log(k)).mean()) for k in range(1, masks + 1)]

    # --- sampling ---------------------------------------------------------------------------------------------
    def _uniforms(self, n: int, generator, uniforms) -> torch.Tensor:
        u = uniforms if uniforms is not None else uniforms_for(n, self.n_dims, generator)
        return u.to(self.layers[0].weight)

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, uniforms: torch.Tensor | None = None,
               k: int = 0) -> torch.Tensor:
        """n binary images (n, D) drawn pixel by pixel in the ordering under mask k (the incremental sampler);
        pixel d is 1 when u_d < p(x_d = 1 | x_<d), u = `uniforms` (n, D) or drawn from `generator`."""
        return self.sample_incremental(self._uniforms(n, generator, uniforms), k)[0]

    @torch.no_grad()
    def sample_naive(self, uniforms: torch.Tensor, k: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference sampler, a full forward pass per pixel (masked weights formed once): uniforms (n, D) ->
        (images (n, D), the probability p(x_d = 1 | x_<d) each pixel was drawn with (n, D))."""
        u = uniforms.to(self.layers[0].weight)
        weights, direct = self.masked_weights(k)  # once: the passes below differ only in x
        x, probs = torch.zeros_like(u), torch.zeros_like(u)
        for d in self.order.tolist():
            probs[:, d] = torch.sigmoid(self._forward(x, weights, direct)[:, d])
            x[:, d] = (u[:, d] < probs[:, d]).to(x)
        return x, probs

    @torch.no_grad()
    def sample_incremental(self, uniforms: torch.Tensor, k: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The same samples as `sample_naive` from the same uniforms, caching the first layer's
        pre-activations a = b + W_1 x and adding one column per drawn pixel (a += W_1[:, d] x_d): per pixel
        O(H_1) for the first layer and one output row instead of a full pass. Returns (images, probs), (n, D)."""
        u = uniforms.to(self.layers[0].weight).T.contiguous()  # (D, n): pixel-major, so each step writes one row
        weights, direct = self.masked_weights(k)
        columns = weights[0].T.contiguous()  # (D, H_1): row d is W_1[:, d], the column pixel d adds
        x, probs = torch.zeros_like(u), torch.zeros_like(u)  # (D, n)
        first = self.layers[0].bias.expand(u.shape[1], -1).clone()  # (n, H_1) pre-activations of x so far
        out_bias = self.layers[-1].bias
        for d in self.order.tolist():
            h = torch.relu(first)
            for layer, weight in zip(self.layers[1:-1], weights[1:-1]):
                h = torch.relu(F.linear(h, weight, layer.bias))  # (n, H_l)
            logit = torch.mv(h, weights[-1][d]) + out_bias[d]  # (n,)
            if direct is not None:
                logit = logit + torch.mv(x.T, direct[d])
            probs[d] = torch.sigmoid(logit)
            x[d] = (u[d] < probs[d]).to(x)
            first.addr_(x[d], columns[d])  # (n, H_1) += x_d W_1[:, d]^T: one column per drawn pixel
        return x.T.contiguous(), probs.T.contiguous()

    @torch.no_grad()
    def sampling_frames(self, n: int = 1, *, generator: torch.Generator | None = None,
                        uniforms: torch.Tensor | None = None, k: int = 0, every: int = 1) -> dict:
        """Frames of pixel-by-pixel sampling for a page that plays them: after every `every` pixels (and at
        the start and end), the canvas so far and the network's p(x_j = 1 | canvas) for every pixel j not
        yet drawn (NaN where drawn). For the next pixel this is its exact conditional; for later ones it is
        what the net says with the undrawn pixels held at 0 (a read-out, not a marginal). Returns
        {"images": (T, n, H, W) 0/1 (NaN not yet drawn), "probs": (T, n, H, W), "step": (T,) pixels drawn,
        "pixel": (T,) the pixel drawn next (-1 at the end), "order": (D,), "samples": (n, D)}; the samples
        equal `sample` with the same uniforms."""
        u = self._uniforms(n, generator, uniforms)
        x, _ = self.sample_incremental(u, k)
        shape = (n, *self.config.image_shape)
        steps = sorted(set(range(0, self.n_dims, max(1, every))) | {self.n_dims})
        images, probs = [], []
        for t in steps:
            drawn = torch.zeros(self.n_dims, dtype=torch.bool, device=x.device)
            drawn[self.order[:t]] = True
            canvas = x * drawn  # (n, D) the pixels drawn so far, 0 elsewhere
            p = torch.sigmoid(self.logits(canvas, k)).masked_fill(drawn, float("nan"))
            images.append(canvas.masked_fill(~drawn, float("nan")).reshape(shape))
            probs.append(p.reshape(shape))
        pixels = [int(self.order[t]) if t < self.n_dims else -1 for t in steps]
        return {"images": torch.stack(images).cpu(), "probs": torch.stack(probs).cpu(), "step": torch.tensor(steps),
                "pixel": torch.tensor(pixels), "order": self.order.cpu(), "samples": x.cpu()}

    # --- training ---------------------------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, k: int = 0) -> dict:
        """Mean NLL of the batch (B, D) under mask k, nats per image, and bits/dim (reported)."""
        nll = -bernoulli_log_prob(batch, self.logits(batch, k)).mean()
        return {"loss": nll, "bits_per_dim": nll.detach() / (self.n_dims * math.log(2))}

    def make_optimizers(self, lr: float = 1e-3, total_steps: int = 0, **_) -> list[torch.optim.Optimizer]:
        """Adam whose rate decays along a cosine to 0 at `total_steps` (constant if 0), see engine.optim."""
        return [scheduled_adam(self.parameters(), lr=lr, total_steps=total_steps)]

    def train_step(self, batch: torch.Tensor, optimizers, *, generator=None) -> dict[str, float]:
        """One Adam step; with n_masks > 1 the masks are cycled (step t uses mask t mod n_masks)."""
        (opt,) = optimizers
        k = self.training_steps % self.config.n_masks
        opt.zero_grad(set_to_none=True)
        terms = self.loss(batch, k)
        terms["loss"].backward()
        scheduled_step(opt) if "base_lr" in opt.param_groups[0] else opt.step()
        self.training_steps += 1
        return {name: float(v.detach()) for name, v in terms.items()}

    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out NLL (nats per image, exact, mask 0) of a validation batch."""
        return {"valid_nll": float(-self.log_prob(x).mean())}

    @torch.no_grad()
    def preview(self, n: int = 16):
        """Samples from fixed uniforms (the same every call): numpy (n, H, W)."""
        return self.sample(n, generator=torch.Generator().manual_seed(0)).reshape(n, *self.config.image_shape) \
            .cpu().numpy()


# --- evaluation (MADE and NADE) ------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(model, *, masks: int | None = None, batch_size: int = 100) -> dict:
    """Exact test NLL of an autoregressive model on all 10,000 images of the seeded binarized MNIST test set
    (mnist.binarized("test")): mean nats per image, its standard error, bits/dim; for a MADE also the
    mixture of masks 1..K (K = `masks`, default the config's n_masks) as a curve of mean nats."""
    test = mnist.binarized("test")
    k_max = masks or getattr(model.config, "n_masks", 1)
    was_training = model.training
    model.eval()
    if hasattr(model, "ensemble_curve"):
        per_mask = torch.cat([model.log_prob_per_mask(test[i:i + batch_size].to(model.device), k_max).double().cpu()
                              for i in range(0, len(test), batch_size)], 1)  # (K, N)
        log_p = per_mask[0]
        curve = [float(-(torch.logsumexp(per_mask[:k], 0) - math.log(k)).mean()) for k in range(1, k_max + 1)]
    else:
        log_p = torch.cat([model.log_prob(test[i:i + batch_size].to(model.device)).double().cpu()
                           for i in range(0, len(test), batch_size)])
        curve = None
    model.train(was_training)
    nll = -log_p
    result = {"nats": nll.mean().item(), "stderr": (nll.std() / math.sqrt(len(nll))).item(),
              "bits_per_dim": nll.mean().item() / (model.n_dims * math.log(2)), "images": len(nll),
              "split": mnist.describe(), "estimator": "exact (autoregressive chain rule)",
              "unit": "nats per image; bits/dim = nats / (784 ln 2)"}
    if curve is not None:
        result["mask_ensemble"] = {"masks": list(range(1, k_max + 1)), "nats": curve,
                                   "how": "mixture: -log (1/K) sum_k p_k(x), masks 0..K-1 (seeds mask_seed + k)"}
    baseline = independent_bernoulli_nll(mnist.images("train"), test)
    return {"test_nll": result, "baseline_independent_bernoulli": baseline}
