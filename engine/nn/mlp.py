"""Multilayer perceptrons: the encoders and decoders of the autoencoder and VAE families."""
from __future__ import annotations

from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def mlp(sizes: tuple[int, ...], *, activation: str = "tanh", final: str = "linear") -> nn.Sequential:
    """Linear layers sizes[0] -> ... -> sizes[-1], `activation` between them and `final` after the last.

    mlp((784, 200, 200, 100), activation="tanh") is Burda et al.'s encoder trunk: (B, 784) -> (B, 100)."""
    if len(sizes) < 2:
        raise ValueError(f"an MLP needs at least an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        last = i == len(sizes) - 2
        layers.append(ACTIVATIONS[final if last else activation]())
    return nn.Sequential(*layers)
