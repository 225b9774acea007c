"""Deep belief net: a stack of RBMs trained greedily, layer by layer.

References:
- Hinton, Osindero & Teh (2006), "A fast learning algorithm for deep belief nets" (greedy layer-wise
  training; a new layer initialised as the transpose of the one below leaves the model unchanged).
- Salakhutdinov & Murray (2008), "On the quantitative analysis of deep belief networks" (the variational
  lower bound with a factorial q from the recognition weights, AIS for the top RBM's log Z; DBN 500-2000
  on MNIST: bound -86.22 nats).

A DBN with L trained layers over v = h_0, h_1, ..., h_L is an RBM between h_{L-1} and h_L on top, and
directed sigmoid layers below it: p(h_{l-1} = 1 | h_l) = sigma(b_l + W_l h_l) (RBM l's visible
conditional). Inference uses the recognition weights (the same W_l, transposed):
q(h_l = 1 | h_{l-1}) = sigma(a_l + W_l^T h_{l-1}). For any q,

    log p(v) >= E_q[ sum_{l<L} (log p(h_{l-1} | h_l) - log q(h_l | h_{l-1})) + log p*(h_{L-1}) ] - log Z_top,

with p*(h_{L-1}) = exp(-F_top(h_{L-1})) the top RBM's unnormalised marginal. The same log-weights averaged
inside the log (log mean_k w_k) give an importance-sampled estimate that tends to log p(v) as k grows.
With L = 1 the model is the RBM itself and the "bound" is exact. All values in nats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.models.rbm import RBM, ContrastiveDivergence, RBMConfig, bernoulli, filters_as_images
from engine.registry import register


@dataclass(frozen=True)
class DBNConfig:
    sizes: tuple[int, ...] = (784, 500, 2000)  # v, h_1, ..., h_L
    image_shape: tuple[int, int] = (28, 28)
    init_std: float = 0.01
    base_rbm: str = ""  # a checkpoint folder (or bundled name) whose RBM becomes layer 1, already trained
    sample_steps: int = 1000  # Gibbs steps in the top RBM used by sample()


def _bernoulli_log_lik(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """sum_i log Bernoulli(x_i; sigma(logits_i)): (..., D) -> (...), broadcasting x against logits."""
    x, logits = torch.broadcast_tensors(x, logits)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


@register("dbn", DBNConfig)
class DBN(Model):
    """A list of RBMs plus a down-pass. `n_trained` (a saved buffer) counts the layers built so far:
    the model is the DBN of the first n_trained RBMs (the last of them is the top RBM)."""

    presets = {
        # Layer 1 is the bundled rbm-mnist (kept frozen). Layer 2 starts as its transpose (784 units, so the
        # DBN starts as exactly that RBM and the bound starts at its log-likelihood) and is trained by PCD-1
        # on h_1 ~ q(h_1 | v), sampled afresh for every batch. (bf16 matmuls ran 10x slower than fp32 here.)
        "bundled": {"config": {"sizes": [784, 500, 784], "base_rbm": "rbm-mnist"},
                    "train": {"epochs": 16, "layer_epochs": [0, 16], "batch_size": 100, "lr": 0.001, "k": 1,
                              "persistent": True, "momentum": 0.5, "weight_decay": 1e-4, "lr_decay": True,
                              "matmul": "fp32"}},
        # Layer 2 with its own 1,000 units from small random weights (Salakhutdinov & Murray used 2,000).
        "wide": {"config": {"sizes": [784, 500, 1000], "base_rbm": "rbm-mnist"},
                 "train": {"epochs": 20, "layer_epochs": [0, 20], "batch_size": 100, "lr": 0.05, "k": 1,
                           "persistent": True, "momentum": 0.5, "weight_decay": 1e-4, "lr_decay": True,
                           "matmul": "fp32"}},
        "scratch": {"config": {"sizes": [784, 500, 2000]},
                    "train": {"epochs": 80, "layer_epochs": [40, 40], "batch_size": 100, "lr": 0.05, "k": 1,
                              "persistent": True, "momentum": 0.5, "weight_decay": 1e-4, "lr_decay": True,
                              "matmul": "fp32"}},
        "quick": {"config": {"sizes": [784, 100, 200]},
                  "train": {"epochs": 2, "layer_epochs": [1, 1], "batch_size": 100, "lr": 0.05, "k": 1,
                            "persistent": True, "momentum": 0.5, "weight_decay": 1e-4, "matmul": "fp32"}},
    }

    def __init__(self, config: DBNConfig) -> None:
        super().__init__(config)
        if len(config.sizes) < 2 or min(config.sizes) < 1 or config.sample_steps < 1:
            raise ValueError(f"a DBN needs two or more positive layer sizes (got {config.sizes}) and sample_steps "
                             f">= 1 (got {config.sample_steps})")
        shapes = [config.image_shape] + [(1, n) for n in config.sizes[1:-1]]
        self.rbms = nn.ModuleList(
            RBM(RBMConfig(n_visible=n_v, n_hidden=n_h, image_shape=tuple(shape), init_std=config.init_std))
            for n_v, n_h, shape in zip(config.sizes[:-1], config.sizes[1:], shapes))
        self.register_buffer("n_trained", torch.zeros(1, dtype=torch.long))  # (1,): layers built so far

    @property
    def layers(self) -> int:
        """How many layers the model has now (at least 1: an untrained first layer is still an RBM)."""
        return max(1, int(self.n_trained))

    @property
    def top(self) -> RBM:
        return self.rbms[self.layers - 1]

    # --- passes -------------------------------------------------------------------------------
    @torch.no_grad()
    def up_probs(self, v: torch.Tensor, layers: int | None = None) -> list[torch.Tensor]:
        """Bottom-up probabilities [p(h_1|v), p(h_2|p(h_1|v)), ...] (mean-field recognition pass),
        one (B, n_l) tensor per layer up to `layers` (default: all trained layers)."""
        out, x = [], v
        for rbm in self.rbms[:layers or self.layers]:
            x = rbm.p_h(x)
            out.append(x)
        return out

    def up_sample(self, v: torch.Tensor, layers: int, generator=None) -> list[torch.Tensor]:
        """h_1, ..., h_layers sampled from the factorial recognition distributions q: list of (B, n_l)."""
        out, x = [], v
        for rbm in self.rbms[:layers]:
            x = bernoulli(rbm.p_h(x), generator)
            out.append(x)
        return out

    @torch.no_grad()
    def down_pass(self, h_top: torch.Tensor, generator=None, *, from_layer: int | None = None) -> torch.Tensor:
        """One stochastic top-down pass: h_top (B, n_L) is the state of layer `from_layer` (default: the
        top layer L); each layer below is sampled from p(h_{l-1} | h_l) and the pixels' probabilities
        p(v = 1 | h_1) (B, D) are returned (sample them for binary images)."""
        x = h_top
        for l in range(from_layer or self.layers, 1, -1):
            x = bernoulli(self.rbms[l - 1].p_v(x), generator)
        return self.rbms[0].p_v(x)

    @torch.no_grad()
    def top_gibbs_frames(self, n: int, steps: list[int], *, generator=None,
                         start: torch.Tensor | None = None) -> torch.Tensor:
        """A Gibbs chain in the top RBM, pushed down to pixels at the requested step counts.

        steps: increasing Gibbs step counts (0 = the first h_L state). The chains start from uniform noise on
        the top RBM's lower layer h_{L-1}, or from `start` (n, n_{L-1}) (e.g. test digits passed up). Each
        recorded state of h_L goes down by one stochastic down-pass. Returns (len(steps), n, D) p(v=1|h_1)."""
        top = self.top
        v = bernoulli(torch.full((n, top.config.n_visible), 0.5, device=self.device, dtype=top.W.dtype), generator) \
            if start is None else start.to(top.W.dtype)
        h = bernoulli(top.p_h(v), generator)
        frames, done = [], 0
        for target in steps:
            for _ in range(target - done):
                v = bernoulli(top.p_v(h), generator)
                h = bernoulli(top.p_h(v), generator)
            done = target
            frames.append(self.down_pass(h, generator))
        return torch.stack(frames)

    @torch.no_grad()
    def sample(self, n: int, *, generator=None, steps: int | None = None) -> torch.Tensor:
        """n images: `steps` Gibbs sweeps in the top RBM, then one down-pass: (n, D) probabilities p(v=1|h_1)."""
        return self.top_gibbs_frames(n, [steps or self.config.sample_steps], generator=generator)[0]

    # --- the likelihood ------------------------------------------------------------------------
    @torch.no_grad()
    def log_weights(self, v: torch.Tensor, k: int, *, generator=None) -> torch.Tensor:
        """log p*(v, h_1..h_{L-1}) - log q(h_1..h_{L-1} | v) for k samples of q per image: (B, D) -> (B, k).

        Unnormalised: subtract the top RBM's log Z. Their mean over k estimates the variational lower bound,
        their log-mean-exp is the importance-sampled estimate of log p(v). With one layer: -F(v), exact."""
        L, B = self.layers, v.shape[0]
        if L == 1:
            return (-self.rbms[0].free_energy(v))[:, None].expand(B, k).clone()
        x = v.repeat_interleave(k, 0)  # (B k, D)
        return self.log_weight_of(x, self.up_sample(x, L - 1, generator)).reshape(B, k)

    def log_weight_of(self, v: torch.Tensor, hs: list[torch.Tensor]) -> torch.Tensor:
        """log p*(v, h_1..h_{L-1}) - log q(h_1..h_{L-1} | v) for given states hs = [h_1, ..., h_{L-1}],
        each (B, n_l): sum over the directed layers of log p(h_{l-1}|h_l) - log q(h_l|h_{l-1}), plus
        -F_top(h_{L-1}). (B, D) -> (B,)."""
        log_w, x = torch.zeros(v.shape[0], device=v.device, dtype=v.dtype), v
        for rbm, h in zip(self.rbms, hs):
            q_logits = torch.addmm(rbm.a, x, rbm.W)  # (B, n_l)
            log_w += _bernoulli_log_lik(x, torch.addmm(rbm.b, h, rbm.W.t())) - _bernoulli_log_lik(h, q_logits)
            x = h
        return log_w - self.top.free_energy(x)

    @torch.no_grad()
    def exact_log_prob(self, v: torch.Tensor) -> torch.Tensor:
        """Exact log p(v) by enumerating every hidden layer below the top (each <= 20 units): (B, D) -> (B,).

        For tiny nets (tests): log p(h_{L-1}) = -F_top - log Z_top over all states, then summed down."""
        from engine.metrics import exact_log_z_rbm
        L, top = self.layers, self.top
        if L == 1:
            return -top.free_energy(v) - exact_log_z_rbm(top.W, top.b, top.a)
        states = _all_states(top.config.n_visible, v.dtype, v.device)  # (S, n_{L-1})
        log_p = -top.free_energy(states) - exact_log_z_rbm(top.W, top.b, top.a)  # (S,)
        for l in range(L - 1, 1, -1):  # push the marginal down through the directed layers above h_1
            below = _all_states(self.rbms[l - 1].config.n_visible, v.dtype, v.device)
            logits = torch.addmm(self.rbms[l - 1].b, states, self.rbms[l - 1].W.t())  # (S_above, S_below dims)
            cond = _bernoulli_log_lik(below[:, None, :], logits[None])  # (S_below, S_above)
            log_p, states = torch.logsumexp(cond + log_p[None], 1), below
        cond = _bernoulli_log_lik(v[:, None, :], torch.addmm(self.rbms[0].b, states, self.rbms[0].W.t())[None])
        return torch.logsumexp(cond + log_p[None], 1)

    # --- features per layer ---------------------------------------------------------------------
    @torch.no_grad()
    def filters(self, layer: int) -> torch.Tensor:
        """Each unit of `layer` (1-based) as pixel weights (n_layer, D): W_1's columns for layer 1; above it,
        the positive-weighted sum of the filters below (W_1 relu(W_2) ... relu(W_layer))."""
        eff = self.rbms[0].W.detach()  # (D, n_1)
        for rbm in self.rbms[1:layer]:
            eff = eff @ rbm.W.detach().clamp_min(0)
        return eff.t()

    @torch.no_grad()
    def top_down_images(self, layer: int, units: torch.Tensor) -> torch.Tensor:
        """Mean-field top-down pass from each unit alone: h_layer = one-hot(unit), then p(h_{l-1}|h_l)
        as probabilities down to p(v|h_1). units (U,) -> (U, D)."""
        x = F.one_hot(units, self.config.sizes[layer]).to(self.rbms[0].W.dtype)
        for l in range(layer, 0, -1):
            x = self.rbms[l - 1].p_v(x)
        return x

    @torch.no_grad()
    def preview(self, n: int = 64):
        """Filters of the newest layer as images in [0, 1]: numpy (n, H, W)."""
        return filters_as_images(self.filters(self.layers)[:n], self.config.image_shape).numpy()

    # --- greedy training ------------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """The greedy objective of every layer: the sum of each RBM's CD-1 surrogate (see RBM.loss) on its own
        input, v for layer 1 and h_{l-1} ~ q passed up (without gradient) for the layers above."""
        gaps, x = [], batch
        for rbm in self.rbms:
            gaps.append(rbm.loss(x, generator=generator)["loss"])
            with torch.no_grad():
                x = bernoulli(rbm.p_h(x), generator)
        return {"loss": torch.stack(gaps).sum(), "free_energy_gap": gaps[self.layers - 1].detach()}

    def make_optimizers(self, **hparams) -> list["GreedyLayerwise"]:
        return [GreedyLayerwise(self, **hparams)]

    def train_step(self, batch, optimizers, *, generator=None) -> dict[str, float]:
        (greedy,) = optimizers
        return greedy.step(batch, generator=generator)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Layer 1's visible biases from the data (or layer 1 = the base RBM, already trained)."""
        if self.config.base_rbm:
            self.load_base_rbm()
        else:
            self.rbms[0].init_from_data(x)

    @torch.no_grad()
    def load_base_rbm(self) -> None:
        from engine import checkpoint
        folder = Path(self.config.base_rbm)
        if not (folder / checkpoint.CONFIG).is_file():  # a bundled name
            folder = Path(__file__).resolve().parents[2] / "assets" / "checkpoints" / self.config.base_rbm
        base = checkpoint.load(folder)
        if (base.config.n_visible, base.config.n_hidden) != tuple(self.config.sizes[:2]):
            raise ValueError(f"base RBM {self.config.base_rbm} is {base.config.n_visible}-{base.config.n_hidden}, "
                             f"not {self.config.sizes[0]}-{self.config.sizes[1]}")
        self.rbms[0].load_state_dict(base.state_dict())
        self.n_trained.fill_(max(1, int(self.n_trained)))

    @torch.no_grad()
    def add_layer(self, layer: int, data: torch.Tensor | None = None) -> None:
        """Start layer `layer` (1-based): as the transpose of the layer below when the sizes allow
        (Hinton et al. 2006: the DBN's distribution is then unchanged), else small random weights with
        visible biases at the log-odds of `data`'s mean (the layer's input). Counts it as built."""
        new = self.rbms[layer - 1]
        if layer > 1 and new.config.n_hidden == self.rbms[layer - 2].config.n_visible:
            below = self.rbms[layer - 2]
            new.W.copy_(below.W.t())
            new.b.copy_(below.a)
            new.a.copy_(below.b)
        elif data is not None:
            new.init_from_data(data)
        self.n_trained.fill_(layer)

    @torch.no_grad()
    def monitor(self, v: torch.Tensor, *, generator=None) -> dict[str, float]:
        """The newest layer's reconstruction error on its input (held-out digits passed up by q)."""
        x = self.up_sample(v, self.layers - 1, generator)[-1] if self.layers > 1 else v
        return {"reconstruction_error": float(self.top.reconstruction_error(x, generator=generator)),
                "layer": float(self.layers)}


def _all_states(n: int, dtype, device) -> torch.Tensor:
    """All 2^n binary vectors: (2^n, n)."""
    if n > 20:
        raise ValueError(f"exact enumeration needs at most 20 units in a layer, got {n}")
    codes = torch.arange(2 ** n, device=device)
    return ((codes[:, None] >> torch.arange(n, device=device)) & 1).to(dtype)


class GreedyLayerwise:
    """Greedy layer-wise training: layer l is an RBM trained by CD/PCD (ContrastiveDivergence) on
    h_{l-1} ~ q(h_{l-1} | v), sampled afresh for every batch through the frozen layers below.

    `layer_epochs` [e_1, e_2, ...] splits training between the layers in proportion (0 = keep that layer
    as it is, e.g. a base RBM). The Trainer calls set_progress(fraction) at each epoch start; the layer
    whose share holds the fraction trains, with its own linear learning-rate decay."""

    def __init__(self, dbn: DBN, *, layer_epochs: list[int] | None = None, **cd_settings) -> None:
        if layer_epochs is None:  # every layer not yet built gets an equal share
            layer_epochs = [0 if i < int(dbn.n_trained) else 1 for i in range(len(dbn.rbms))]
        if len(layer_epochs) != len(dbn.rbms):
            raise ValueError(f"layer_epochs {layer_epochs} needs one entry per layer ({len(dbn.rbms)})")
        first = next((i for i, e in enumerate(layer_epochs) if e), None)
        if first is None:
            raise ValueError("layer_epochs gives no layer any epochs")
        if first > int(dbn.n_trained):
            raise ValueError(f"layer {first + 1} cannot train before layers 1..{first} are built")
        self.dbn, self.layer_epochs, self.cd_settings = dbn, list(layer_epochs), cd_settings
        total = sum(layer_epochs)
        ends = [sum(layer_epochs[:i + 1]) / total for i in range(len(layer_epochs))]
        self.spans = [(ends[i] - layer_epochs[i] / total, ends[i]) for i in range(len(layer_epochs))]
        self.layer, self.cd = 0, None  # 1-based layer in training; its ContrastiveDivergence

    def _layer_at(self, fraction: float) -> int:
        return next(i + 1 for i, (lo, hi) in enumerate(self.spans) if self.layer_epochs[i] and fraction < hi - 1e-9)

    def set_progress(self, fraction: float) -> None:
        layer = self._layer_at(min(fraction, 1 - 1e-9))
        if layer != self.layer:
            self.layer, self.cd = layer, None  # built at the first batch (its biases come from the data)
        lo, hi = self.spans[layer - 1]
        self._local = (fraction - lo) / (hi - lo)
        if self.cd is not None:
            self.cd.set_progress(self._local)

    @torch.no_grad()
    def step(self, v: torch.Tensor, *, generator=None) -> dict[str, float]:
        if self.layer == 0:
            self.set_progress(0.0)
        x = self.dbn.up_sample(v, self.layer - 1, generator)[-1] if self.layer > 1 else v  # (B, n_{l-1})
        if self.cd is None:
            if int(self.dbn.n_trained) < self.layer:  # biases from the mean of the layer's input
                self.dbn.add_layer(self.layer, self.dbn.up_probs(v, self.layer - 1)[-1] if self.layer > 1 else v)
            self.cd = ContrastiveDivergence(self.dbn.rbms[self.layer - 1], **self.cd_settings)
            self.cd.set_progress(self._local)
        return {**self.cd.step(x, generator=generator), "layer": float(self.layer)}

    def state_dict(self) -> dict:
        return {"layer": self.layer, "cd": None if self.cd is None else self.cd.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.layer = int(state["layer"])
        if state["cd"] is not None and self.layer:
            self.cd = ContrastiveDivergence(self.dbn.rbms[self.layer - 1], **self.cd_settings)
            self.cd.load_state_dict(state["cd"])
            self._local = 0.0


def log_mean_exp(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return torch.logsumexp(x, dim) - math.log(x.shape[dim])


# --- evaluation --------------------------------------------------------------------------------
def top_base_rate(dbn: DBN, train: torch.Tensor) -> torch.Tensor:
    """Visible biases of the AIS base-rate model for the top RBM: log-odds of the mean of its input
    (v itself, or p(h_{L-1} | ...) passed up from training images). (N, D) -> (n_{L-1},)."""
    from engine.metrics import base_rate_bias
    x = dbn.up_probs(train, dbn.layers - 1)[-1] if dbn.layers > 1 else train
    return base_rate_bias(x)


def iter_evaluation(dbn: DBN, test: torch.Tensor, train: torch.Tensor, *, n_runs: int = 100,
                    n_betas: int = 14500, bound_k: int = 10, is_k: int = 1000, is_images: int = 1000,
                    seed: int = 0) -> Iterator[dict]:
    """The DBN's test log-likelihood, told honestly (Salakhutdinov & Murray 2008), in nats per image:
    log Z of the top RBM by AIS (base rate from `train`), the variational lower bound on all `test`
    images (mean of `bound_k` samples of q per image), and the importance-sampled estimate with `is_k`
    samples of q on the first `is_images`. Yields {"progress", "stage"}; the last also has "result"."""
    from engine.metrics import iter_ais
    g = torch.Generator().manual_seed(seed)
    top = dbn.top
    for update in iter_ais(top.W, top.b, top.a, top_base_rate(dbn, train), n_runs=n_runs, n_betas=n_betas,
                           generator=g):
        if "result" not in update:
            yield {"progress": 0.8 * update["progress"], "stage": "AIS for the top RBM's log Z"}
    ais = update["result"]
    bound = torch.cat([dbn.log_weights(test[i:i + 500], bound_k, generator=g).double().mean(1)
                       for i in range(0, len(test), 500)]) - ais.log_z  # (N,)
    yield {"progress": 0.85, "stage": "importance sampling"}
    is_est, chunk = [], max(1, 20_000 // is_k)
    for i in range(0, is_images, chunk):
        is_est.append(log_mean_exp(dbn.log_weights(test[i:min(i + chunk, is_images)], is_k, generator=g).double())
                      - ais.log_z)
        yield {"progress": 0.85 + 0.15 * min(i + chunk, is_images) / is_images, "stage": "importance sampling"}
    is_est = torch.cat(is_est)
    n = len(bound)
    yield {"progress": 1.0, "result": {
        "layers": dbn.layers, "sizes": list(dbn.config.sizes[:dbn.layers + 1]),
        "lower_bound": bound.mean().item(),
        "lower_bound_stderr": math.hypot(bound.std().item() / math.sqrt(n), ais.log_z_std),
        "lower_bound_images": n, "lower_bound_k": bound_k,
        "is_estimate": is_est.mean().item(),
        "is_estimate_stderr": math.hypot(is_est.std().item() / math.sqrt(len(is_est)), ais.log_z_std),
        "is_images": len(is_est), "is_k": is_k,
        "same_images_lower_bound": bound[:len(is_est)].mean().item(),
        "log_z": ais.log_z, "log_z_std": ais.log_z_std, "log_z_base": ais.log_z_base,
        "n_runs": ais.n_runs, "n_betas": ais.n_betas,
        "estimator": "exact given log Z (one layer)" if dbn.layers == 1 else
        "variational lower bound (factorial q from the recognition weights) and IS estimate; AIS for log Z"}}
