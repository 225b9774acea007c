"""A small MNIST convnet classifier whose penultimate features measure generated digits.

References:
- LeCun et al. (1998), "Gradient-Based Learning Applied to Document Recognition": convnets on MNIST.
- Heusel et al. (2017), "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium": the Frechet distance between Gaussians fitted to a classifier's features (FID uses
  Inception; here, as in many MNIST papers, a small MNIST classifier instead).
- Kynkaanniemi et al. (2019), "Improved Precision and Recall Metric for Assessing Generative Models":
  the k-NN manifolds in the same feature space.

Network: image (B, 1, 28, 28) in [0, 1] -> conv 3x3 (w) -> ReLU -> max-pool -> (B, w, 14, 14) -> conv 3x3
(2w) -> ReLU -> max-pool -> (B, 2w, 7, 7) -> linear -> ReLU -> features (B, F) -> linear -> logits (B, 10).

Batches carry their labels: (B, 785) rows of 784 grey levels in [0, 1] and the digit (0..9) as the
last column, so the engine's one training loop serves it unchanged ("mnist-labelled" in make_trainer).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from engine.models.base import Model
from engine.registry import register


@dataclass(frozen=True)
class ClassifierConfig:
    width: int = 32
    features: int = 128
    n_classes: int = 10
    image_shape: tuple[int, int] = (28, 28)


def split(batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 785) labelled rows -> images (B, 784) and labels (B,) int64."""
    return batch[:, :-1], batch[:, -1].round().long()


def labelled(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """images (B, 784) and labels (B,) -> (B, 785) rows with the label as the last column."""
    return torch.cat([images, labels.to(images.dtype)[:, None]], 1)


def labelled_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, generator: torch.Generator):
    """One epoch of shuffled (batch_size, 785) labelled batches."""
    order = torch.randperm(len(images), generator=generator)
    for start in range(0, len(images) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        yield labelled(images[idx], labels[idx])


@register("mnist-classifier", ClassifierConfig)
class Classifier(Model):
    """Digit classifier; `features(x)` is the (B, F) penultimate layer used by the GAN quality metrics."""

    dataset = "mnist-labelled"
    presets = {
        "bundled": {"config": {}, "train": {"epochs": 2, "batch_size": 64, "lr": 1e-3}},
        "tiny": {"config": {"width": 4, "features": 8}, "train": {"epochs": 1, "batch_size": 16, "lr": 1e-3}},
    }

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__(config)
        w = config.width
        self.trunk = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, w, 14, 14)
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, 2w, 7, 7)
            nn.Flatten(), nn.Linear(2 * w * 49, config.features), nn.ReLU())  # (B, F)
        self.head = nn.Linear(config.features, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: images (B, 784) in [0, 1] -> (B, F), non-negative (after ReLU)."""
        return self.trunk(x.reshape(-1, 1, *self.config.image_shape).to(self.device))

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: images (B, 784) -> (B, n_classes)."""
        return self.head(self.features(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """Predicted digits (B,) int64, computed in chunks."""
        return torch.cat([self.logits(x[i:i + batch_size]).argmax(1).cpu() for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def embed(self, x: torch.Tensor, *, batch_size: int = 1000) -> torch.Tensor:
        """features() of many images (N, 784) in chunks, in eval mode: (N, F) float32 on the CPU."""
        was_training = self.training
        self.eval()
        out = torch.cat([self.features(x[i:i + batch_size]).cpu() for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    def loss(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Cross-entropy (nats per image) on labelled rows (B, 785), and the batch accuracy."""
        x, y = split(batch)
        logits = self.logits(x)
        return {"loss": F.cross_entropy(logits, y), "accuracy": (logits.argmax(1) == y).float().mean().detach()}

    @torch.no_grad()
    def monitor(self, batch: torch.Tensor, *, generator=None) -> dict[str, float]:
        x, y = split(batch)
        return {"valid_accuracy": float((self.predict(x) == y.cpu()).float().mean())}

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """A classifier has no model of the images: this draws n uniform-noise images and labels them
        with the classifier's own prediction, (n, 785) rows in the training format (for the contract
        tests and as a sanity probe; never shown as samples)."""
        x = torch.rand(n, self.config.image_shape[0] * self.config.image_shape[1], generator=generator)
        return labelled(x, self.predict(x))
