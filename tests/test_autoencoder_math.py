"""Autoencoder and PCA math: a linear AE finds PCA's subspace, principal angles, PCA's error, float16 checkpoints."""
from __future__ import annotations

import pytest
import torch

from engine import api, checkpoint
from engine.pca import fit_pca, nearest_neighbours, precision_at_k, principal_angles, squared_error


def low_rank_data(n: int = 2000, d: int = 20, rank: int = 3, noise: float = 0.05, seed: int = 0) -> torch.Tensor:
    """n points near a random rank-`rank` affine subspace of R^d, with distinct variances per direction."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(d, rank, generator=g))  # (d, rank)
    scales = torch.linspace(3.0, 1.0, rank)
    z = torch.randn(n, rank, generator=g) * scales
    return 0.5 + z @ basis.t() + noise * torch.randn(n, d, generator=g)


def test_principal_angles_of_identical_and_orthogonal_subspaces():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 4, generator=g)
    mixed = a @ torch.randn(4, 4, generator=g)  # same column space, different basis
    assert principal_angles(a, mixed).max() < 1e-3
    eye = torch.eye(6)
    assert torch.allclose(principal_angles(eye[:, :2], eye[:, 2:4]), torch.tensor([90.0, 90.0]))
    half = principal_angles(eye[:, :1], (eye[:, 0] + eye[:, 1])[:, None])  # 45 degrees apart
    assert half.item() == pytest.approx(45.0, abs=1e-4)


def test_pca_error_is_the_sum_of_discarded_eigenvalues():
    x = low_rank_data(d=12, rank=5, noise=0.3)
    for k in (1, 3, 5, 8):
        pca = fit_pca(x, k)
        error = squared_error(x, pca.reconstruct(x)).mean()
        assert error.item() == pytest.approx(pca.variances[k:].sum().item(), rel=1e-4)
    assert torch.allclose(pca.components @ pca.components.t(), torch.eye(8), atol=1e-5)


def test_pca_truncation_matches_a_smaller_fit():
    x = low_rank_data()
    assert principal_angles(fit_pca(x, 5).truncate(2).components.t(), fit_pca(x, 2).components.t()).max() < 1e-2


def train_linear_autoencoder(x: torch.Tensor, k: int, steps: int = 1500):
    torch.manual_seed(0)
    model = api.build("autoencoder", n_visible=x.shape[1], hidden=(), code=k, activation="linear",
                      output="linear", image_shape=(4, 5))
    assert model.linear
    optimizers = model.make_optimizers(lr=0.01)
    for _ in range(steps):
        model.train_step(x, optimizers)
    return model


def test_linear_autoencoder_spans_the_pca_subspace():
    x = low_rank_data()
    model = train_linear_autoencoder(x, 3)
    pca = fit_pca(x, 3)
    angles = principal_angles(model.decoder_basis(), pca.components.t())
    assert angles.max() < 2.0, angles
    # ... and it is not the trivial outcome: a random subspace is far away
    random = torch.randn(20, 3, generator=torch.Generator().manual_seed(5))
    assert principal_angles(random, pca.components.t()).max() > 30
    assert model.squared_error(x).mean().item() == pytest.approx(squared_error(x, pca.reconstruct(x)).mean().item(), rel=0.02)


def test_deep_autoencoder_shapes_and_losses():
    model = api.build("autoencoder", hidden=(32, 16), code=2)
    x = torch.rand(5, 784)
    assert model.encode(x).shape == (5, 2) and model.decode(model.encode(x)).shape == (5, 784)
    terms = model.loss(x)
    assert terms["squared_error"].item() == pytest.approx(model.squared_error(x).mean().item(), rel=1e-5)
    assert terms["loss"] > 0  # cross-entropy of the logistic outputs, in nats per image


def test_nearest_neighbours_and_precision_at_k():
    codes = torch.tensor([[0.0], [0.1], [0.2], [5.0], [5.1], [9.0]])
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    assert nearest_neighbours(codes, torch.tensor([0, 3]), 2).tolist() == [[1, 2], [4, 5]]
    assert precision_at_k(codes, labels, 1, n_queries=6) == pytest.approx(5 / 6)  # only the 9.0 misses
    assert precision_at_k(codes[:3], labels[:3], 2, n_queries=3) == 1.0


def test_float16_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = api.build("autoencoder", hidden=(64,), code=4).eval()
    full = checkpoint.save(model, tmp_path / "fp32")
    half = checkpoint.save(model, tmp_path / "fp16", dtype=torch.float16)
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = checkpoint.load(half)
    assert all(p.dtype == torch.float32 for p in loaded.state_dict().values())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key
    x = torch.rand(8, 784)
    assert torch.allclose(loaded(x), model(x), atol=1e-2)


@pytest.mark.parametrize("standardize", [False, True])
def test_pca_init_computes_pca_exactly_through_the_relu_layers(standardize):
    x = low_rank_data(n=500, d=20, rank=6, noise=0.1)
    model = api.build("autoencoder", n_visible=20, hidden=(40, 16, 12), code=5, output="linear",
                      image_shape=(4, 5), init="pca", standardize=standardize)
    model.init_from_data(x)
    pca = fit_pca(x, 5)
    assert torch.allclose(model.encode(x), pca.encode(x), atol=1e-4)
    assert torch.allclose(model(x), pca.reconstruct(x), atol=1e-4)
    loss = model.loss(x[:50])["loss"]
    loss.backward()
    assert model.decoder[-2].weight.grad[:, 10:].abs().sum() > 0, "the random units are free to learn"


def test_pca_init_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="init='pca'"):
        api.build("autoencoder", n_visible=20, hidden=(8,), code=5, output="linear", init="pca")  # 8 < 2 * 5
    with pytest.raises(ValueError, match="init='pca'"):
        api.build("autoencoder", n_visible=20, hidden=(40,), code=5, output="sigmoid", init="pca")


@pytest.mark.skipif(not api.faces.available(), reason="olivettifaces.mat is not in the data folder")
def test_faces_preset_trains_on_faces_and_starts_at_pca():
    recipe = api.preset("autoencoder", "faces")
    model = api.new_model_for_training("autoencoder", recipe["config"])
    assert model.dataset == "faces-25" and model.config.n_visible == 625
    test = api.faces.images("test")
    pca = fit_pca(api.faces.images("train"), 30)
    assert model.squared_error(test).mean().item() == pytest.approx(
        squared_error(test, pca.reconstruct(test)).mean().item(), rel=1e-4)
    trainer = api.make_trainer(model, {**recipe["train"], "epochs": 1}, log_every=1000)
    last = list(trainer.run())[-1]
    assert trainer.step == 14 and last["epoch_end"], "280 training faces in batches of 20"
    assert "squared_error" in last, "monitored on the validation faces"
    assert api.make_trainer(api.build("autoencoder"), {"epochs": 1, "batch_size": 100}).steps_per_epoch == 500
