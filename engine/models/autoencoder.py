"""Autoencoders: shallow (the slide's sigmoid encoder + linear decoder), linear (= PCA's subspace) and deep.

References:
- Baldi & Hornik (1989), "Neural networks and principal component analysis: learning from examples
  without local minima": a linear autoencoder with K hidden units trained on squared error spans the
  subspace of the top-K principal components (its weights need not be the components themselves).
- Bourlard & Kamp (1988), "Auto-association by multilayer perceptrons and singular value decomposition":
  nonlinear hidden units with linear outputs do no better than that subspace.
- Hinton & Salakhutdinov (2006), "Reducing the dimensionality of data with neural networks": the deep
  784-1000-500-250-30 autoencoder with a linear code layer and logistic outputs; squared error per
  MNIST test image 3.00 against 13.87 for PCA(30).

x in [0, 1]^D (grey-level MNIST, D = 784), code z in R^K. The encoder is an MLP D -> hidden... -> K and the
decoder mirrors it K -> ...hidden -> D. Squared error per image = sum over pixels of (x - x_hat)^2 (the
paper's unit), averaged over images. An autoencoder is not a generative model: `sample` only decodes
codes drawn from a Gaussian fitted to the codes of held-out data.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.nn.mlp import ACTIVATIONS, mlp
from engine.registry import register


@dataclass(frozen=True)
class AutoencoderConfig:
    n_visible: int = 784
    hidden: tuple[int, ...] = (1000, 500, 250)  # encoder hidden sizes; the decoder mirrors them
    code: int = 30  # K, the size of the code layer
    activation: str = "relu"  # hidden layers: sigmoid | tanh | relu | linear
    code_activation: str = "linear"  # the code layer (Hinton & Salakhutdinov: linear code units)
    output: str = "sigmoid"  # sigmoid: logistic pixels trained with cross-entropy; linear: squared error
    image_shape: tuple[int, int] = (28, 28)
    init: str = "random"  # random | pca: start as PCA(code) exactly (see init_as_pca), then train
    standardize: bool = False  # encoder input (x - mean image) / pixel std of the training data (init_from_data)
    dataset: str = "mnist-grey"  # what engine.api.make_trainer feeds: "mnist-grey" or "faces-25" (Olivetti, 25x25)


# Olivetti faces at 25x25, the slide's 625-2000-1000-500-30. Started as PCA(30) (init_as_pca) and fine-tuned on
# flipped/shifted training faces: from a random start it overfit the 280 training faces (about 6 on unseen
# people against PCA's 2.6) within the budget. 40 epochs (560 steps): an exploratory run's validation error
# (persons 28-31) was lowest near 500-600 steps and rose after about 1,000.
FACES = {"n_visible": 625, "hidden": (2000, 1000, 500), "code": 30, "output": "linear", "image_shape": (25, 25),
         "standardize": True, "init": "pca", "dataset": "faces-25"}


def _train(epochs: int, lr: float = 1e-3, batch_size: int = 100) -> dict:
    return {"epochs": epochs, "batch_size": batch_size, "lr": lr}


@register("autoencoder", AutoencoderConfig)
class Autoencoder(Model):
    """x -> z = encoder(x) -> x_hat = decoder(z); trained to reconstruct x (no noise, no prior)."""

    presets = {
        "deep": {"config": {"hidden": (1000, 500, 250), "code": 30}, "train": _train(30)},
        # tanh: relu hidden units gave 2-D codes along a few long rays (most digits crammed near 0)
        "deep2d": {"config": {"hidden": (1000, 500, 250), "code": 2, "activation": "tanh"}, "train": _train(30)},
        "shallow": {"config": {"hidden": (), "code": 30, "activation": "sigmoid", "code_activation": "sigmoid",
                               "output": "linear"}, "train": _train(10)},
        "linear": {"config": {"hidden": (), "code": 30, "activation": "linear", "output": "linear"},
                   "train": _train(10)},
        "faces": {"config": FACES, "train": _train(40, lr=1e-4, batch_size=20)},
        "tiny": {"config": {"hidden": (16,), "code": 2}, "train": _train(1)},
    }

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__(config)
        for name in (config.activation, config.code_activation, config.output):
            if name not in ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
        if config.output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear', got {config.output!r}")
        sizes = (config.n_visible, *config.hidden, config.code)
        if min(sizes) < 1:
            raise ValueError(f"layer sizes must be positive, got {sizes}")
        if config.init not in ("random", "pca"):
            raise ValueError(f"init must be 'random' or 'pca', got {config.init!r}")
        if config.init == "pca" and not (config.activation == "relu" and config.code_activation == config.output
                                         == "linear" and min(config.hidden, default=0) >= 2 * config.code):
            raise ValueError("init='pca' needs relu hidden layers of at least 2 * code units, a linear code and "
                             "linear outputs")
        self.encoder = mlp(sizes, activation=config.activation, final=config.code_activation)
        self.decoder = mlp(sizes[::-1], activation=config.activation)  # (B, K) -> (B, D) pre-activations
        # A Gaussian fitted to held-out codes (updated by monitor()/fit_codes()), used only by sample().
        self.register_buffer("code_mean", torch.zeros(config.code))
        self.register_buffer("code_std", torch.ones(config.code))
        if config.standardize:  # set from the training images by init_from_data, stored with the weights
            self.register_buffer("input_mean", torch.zeros(config.n_visible))
            self.register_buffer("input_scale", torch.ones(()))

    @property
    def dataset(self) -> str:
        """The training data engine.api.make_trainer feeds (grey levels in [0, 1]): the config's `dataset`."""
        return self.config.dataset

    @property
    def linear(self) -> bool:
        """True when every layer is linear: the autoencoder of Baldi & Hornik, whose optimum is PCA's subspace."""
        c = self.config
        return c.activation == c.code_activation == c.output == "linear"

    # --- encoder and decoder ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes: (B, D) -> (B, K)."""
        if self.config.standardize:
            x = (x - self.input_mean) / self.input_scale  # (B, D), centred: faces differ by small deviations
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Reconstructions (in [0, 1] with logistic outputs): (B, K) -> (B, D)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.config.output == "sigmoid" else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def decoder_basis(self) -> torch.Tensor:
        """The output layer's weights (D, K_last): for a shallow AE, the K images the decoder adds up."""
        return self.decoder[-2].weight.detach()

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """With linear outputs, start the output bias at the mean image of x (N, D): the gradient then only
        has to find the subspace, not the mean (which made Adam crawl on MNIST's uncentred pixels).
        With `standardize`, also set the input's mean image and scale, and start logistic outputs at the
        mean image (bias = logit of the mean, clamped to [0.01, 0.99])."""
        mean = x.mean(0)  # (D,)
        if self.config.output == "linear":
            self.decoder[-2].bias.copy_(mean)
        if self.config.standardize:
            self.input_mean.copy_(mean)
            self.input_scale.copy_(x.std().clamp_min(1e-6))
            if self.config.output == "sigmoid":
                self.decoder[-2].bias.copy_(torch.logit(mean.clamp(0.01, 0.99)))
        if self.config.init == "pca":
            self.init_as_pca(x)

    @torch.no_grad()
    def init_as_pca(self, x: torch.Tensor) -> None:
        """Set the weights so that the network computes PCA(K) of x (N, D) exactly; the other units keep their
        random weights (with zero weight into the code and into the output) and are free to learn.

        The top-K projections p = C (x - mean) travel through the relu layers as the pairs relu(p), relu(-p)
        in the first 2K units of every hidden layer (relu(a) - relu(-a) = a); the code is their difference,
        the decoder mirrors this, and the output layer adds C^T z to the mean image."""
        from engine.pca import fit_pca

        k, pca = self.config.code, fit_pca(x, self.config.code)
        C, eye = pca.components, torch.eye(k)  # (K, D), (K, K)
        scale = self.input_scale if self.config.standardize else torch.ones(())
        shift = self.input_mean if self.config.standardize else torch.zeros_like(pca.mean)
        enc, dec = self.encoder[0::2], self.decoder[0::2]  # the Linear layers
        first = enc[0]
        first.weight[:2 * k] = torch.cat([C, -C]) * scale  # on standardized input u = (x - mean) / scale
        first.bias[:2 * k] = torch.cat([C, -C]) @ (shift - pca.mean)
        for layer in (*enc[1:-1], *dec[1:-1]):
            _pass_through(layer, 2 * k)
        enc[-1].weight.zero_()
        enc[-1].weight[:, :2 * k] = torch.cat([eye, -eye], 1)  # z = relu(p) - relu(-p) = p
        enc[-1].bias.zero_()
        dec[0].weight[:2 * k] = torch.cat([eye, -eye])  # (2K, K): the pair relu(z), relu(-z)
        dec[0].bias[:2 * k] = 0
        dec[-1].weight.zero_()
        dec[-1].weight[:, :2 * k] = torch.cat([C, -C]).t()  # (D, 2K)
        dec[-1].bias.copy_(pca.mean)

    # --- the model contract -------------------------------------------------------------------
    def loss(self, batch: torch.Tensor, *, generator=None) -> dict[str, torch.Tensor]:
        """Training loss per image (cross-entropy in nats for logistic outputs, else squared error),
        and the squared error per image sum_i (x_i - x_hat_i)^2 that the paper reports: (B, D) -> scalars."""
        out = self.decoder(self.encode(batch))  # (B, D)
        x_hat = torch.sigmoid(out) if self.config.output == "sigmoid" else out
        squared = ((batch - x_hat) ** 2).sum(-1).mean()
        if self.config.output == "sigmoid":
            loss = F.binary_cross_entropy_with_logits(out, batch, reduction="none").sum(-1).mean()
        else:
            loss = squared
        return {"loss": loss, "squared_error": squared.detach()}

    @torch.no_grad()
    def squared_error(self, x: torch.Tensor) -> torch.Tensor:
        """Squared error of each image's reconstruction, summed over pixels: (B, D) -> (B,)."""
        return ((x - self(x)) ** 2).sum(-1)

    @torch.no_grad()
    def sample(self, n: int, *, generator=None) -> torch.Tensor:
        """Decodes n codes z ~ N(code_mean, diag(code_std^2)): (n, D).

        Honest caveat: an autoencoder defines no density over codes, so this is not sampling from a
        model of p(x); the Gaussian is only fitted to the codes of held-out images (monitor, fit_codes)."""
        eps = torch.randn(n, self.config.code, generator=generator, device=self.code_std.device)
        return self.decode(self.code_mean + self.code_std * eps)

    @torch.no_grad()
    def fit_codes(self, x: torch.Tensor) -> None:
        """Set the Gaussian that sample() draws codes from to the mean and std of encode(x), x: (N, D)."""
        z = self.encode(x)
        self.code_mean.copy_(z.mean(0))
        self.code_std.copy_(z.std(0) if len(z) > 1 else torch.ones_like(self.code_std))

    @torch.no_grad()
    def monitor(self, x: torch.Tensor, *, generator=None) -> dict[str, float]:
        """Held-out squared error per image; also refits the code Gaussian of sample() (like BatchNorm's
        running statistics, a buffer updated without gradients)."""
        self.fit_codes(x)
        return {"squared_error": float(self.squared_error(x).mean())}

    @torch.no_grad()
    def preview(self, n: int = 16):
        """The first n images of the output layer's weights, scaled symmetrically: numpy (n, H, W) in [0, 1]."""
        W = self.decoder_basis()[:, :n].t()  # (n, D)
        scale = W.abs().amax(dim=1, keepdim=True).clamp_min(1e-8)
        return (0.5 + 0.5 * W / scale).reshape(-1, *self.config.image_shape).float().cpu().numpy()


def _pass_through(layer: nn.Linear, n: int) -> None:
    """The first n outputs of `layer` copy its first n inputs (nonnegative, so relu keeps them)."""
    layer.weight[:n] = 0
    layer.weight[:n, :n] = torch.eye(n)
    layer.bias[:n] = 0
