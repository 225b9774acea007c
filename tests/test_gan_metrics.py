"""MNIST GAN engine: Frechet distance and precision/recall math, the DCGAN's shapes, seeds and training
schedule, the snapshot file, and the classifier's features. No dataset needed."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine import api, checkpoint
from engine.checkpoint import CheckpointError
from engine.metrics import frechet_distance, knn_radii, precision_recall
from engine.models import classifier as clf
from engine.snapshots import FILE, SnapshotRecorder, load_snapshots, save_snapshots, to_uint8


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- Frechet distance --------------------------------------------------------------------------
def test_fd_of_a_set_with_itself_is_zero():
    x = torch.randn(2000, 16, generator=gen(0))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fd_of_two_large_samples_of_one_gaussian_is_near_zero():
    a, b = torch.randn(20000, 4, generator=gen(1)), torch.randn(20000, 4, generator=gen(2))
    assert frechet_distance(a, b) < 0.01


def test_fd_matches_the_closed_form_for_two_known_gaussians():
    """Samples whitened to have exactly the given means and covariances: FD must equal the formula
    ||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^1/2), here with C1 = diag(1, 4), C2 = R diag(9, 1) R^T."""
    def exact(mean, cov, n=500, seed=0):
        z = torch.randn(n, 2, generator=gen(seed), dtype=torch.float64)
        z = z - z.mean(0)
        z = z @ torch.linalg.inv(torch.linalg.cholesky(torch.cov(z.T))).T  # sample covariance exactly I
        return z @ torch.linalg.cholesky(cov).T + mean
    theta = 0.3
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)
    c1 = torch.diag(torch.tensor([1.0, 4.0], dtype=torch.float64))
    c2 = rot @ torch.diag(torch.tensor([9.0, 1.0], dtype=torch.float64)) @ rot.T
    m1, m2 = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([2.0, -1.0], dtype=torch.float64)
    from scipy.linalg import sqrtm
    cross = np.real(sqrtm(c1.numpy() @ c2.numpy())).trace()
    expected = float(((m1 - m2) ** 2).sum() + c1.trace() + c2.trace()) - 2 * cross
    assert frechet_distance(exact(m1, c1), exact(m2, c2, seed=1)) == pytest.approx(expected, rel=1e-9)
    # and for commuting (diagonal) covariances, by hand: (1-3)^2 + (2-1)^2 = 5 plus the means' 8
    assert frechet_distance(exact(m1, c1), exact(m2, torch.diag(torch.tensor([9.0, 1.0], dtype=torch.float64)),
                                                  seed=2)) == pytest.approx(8 + 5, rel=1e-9)


def test_fd_grows_with_a_shift_and_is_symmetric():
    a = torch.randn(3000, 8, generator=gen(3))
    b = torch.randn(3000, 8, generator=gen(4)) * 1.5
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    assert frechet_distance(a, b + 2) > frechet_distance(a, b) + 8 * 4 - 1


# --- precision and recall ----------------------------------------------------------------------
def test_knn_radii_on_a_line():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(x, k=2).tolist() == [3.0, 2.0, 3.0, 5.0]


def test_real_against_real_scores_high_on_both():
    real = torch.randn(3000, 8, generator=gen(5))
    other = torch.randn(3000, 8, generator=gen(6))
    r = precision_recall(real, other, k=3)
    assert r["precision"] > 0.85 and r["recall"] > 0.85


def test_a_collapsed_generator_has_high_precision_and_no_recall():
    real = torch.randn(3000, 8, generator=gen(7))
    collapsed = real[:1].expand(3000, -1).clone()  # every sample is the same real point
    r = precision_recall(real, collapsed, k=3)
    assert r["precision"] == 1.0
    assert r["recall"] < 0.01


def test_samples_off_the_data_have_low_precision():
    real = torch.randn(2000, 8, generator=gen(8))
    far = torch.randn(2000, 8, generator=gen(9)) + 6
    r = precision_recall(real, far, k=3)
    assert r["precision"] < 0.05 and r["recall"] < 0.05


# --- the DCGAN ---------------------------------------------------------------------------------
def small_gan(**overrides):
    torch.manual_seed(0)
    return api.build("dcgan", **{**api.preset("dcgan", "tiny")["config"], **overrides})


def test_dcgan_shapes_range_and_seed():
    model = api.build("dcgan")
    x = model.sample(5, generator=gen(3))
    assert x.shape == (5, 784) and x.min() >= 0 and x.max() <= 1
    assert torch.equal(x, model.sample(5, generator=gen(3)))
    assert not torch.equal(x, model.sample(5, generator=gen(4)))
    assert model.decode(model.noise(2, generator=gen(3))).shape == (2, 784)
    assert model.critic(x).shape == (5,)
    assert model.preview().shape == (64, 28, 28)


def test_the_critic_has_no_batchnorm_and_the_generator_has():
    model = api.build("dcgan", **api.preset("dcgan", "wgan-gp")["config"])
    kinds = lambda m: {type(x).__name__ for x in m.modules()}  # noqa: E731
    assert not any("BatchNorm" in k for k in kinds(model.critic))
    assert "GroupNorm" in kinds(model.critic) and "BatchNorm" in kinds(model.generator)


def test_generator_steps_every_n_critic_calls():
    model = small_gan(n_critic=3)
    opts = model.make_optimizers()
    batch = torch.rand(8, 784, generator=gen(0))
    g_before = [p.clone() for p in model.generator.parameters()]
    for call in range(1, 7):
        c_before = [p.clone() for p in model.critic.parameters()]
        out = model.train_step(batch, opts, generator=gen(call))
        g_moved = any(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))
        assert any(not torch.equal(a, b) for a, b in zip(c_before, model.critic.parameters()))  # every call
        assert g_moved == (call % 3 == 0), call
        g_before = [p.clone() for p in model.generator.parameters()]
        assert set(out) >= {"d_loss", "g_loss", "wasserstein", "gp"}


@pytest.mark.parametrize("loss", ["non-saturating", "wgan-gp"])
def test_seeded_training_reproduces(loss):
    def run():
        model = small_gan(loss=loss, n_critic=1)
        opts = model.make_optimizers()
        for s in range(3):
            out = model.train_step(torch.rand(8, 784, generator=gen(s)), opts, generator=gen(10 + s))
        return out, model.sample(4, generator=gen(0))
    (a, xa), (b, xb) = run(), run()
    assert a == b and torch.equal(xa, xb)


def test_dcgan_rejects_an_unknown_loss():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        api.build("dcgan", loss="hinge")


def test_recalibrate_keeps_samples_in_range_and_seeded():
    model = small_gan()
    model.recalibrate(n_batches=3, batch_size=32)
    assert not model.training
    x = model.sample(6, generator=gen(1))
    assert torch.equal(x, model.sample(6, generator=gen(1))) and 0 <= x.min() and x.max() <= 1


# --- snapshots ---------------------------------------------------------------------------------
def test_snapshot_file_round_trip_and_errors(tmp_path):
    images = (np.arange(3 * 2 * 28 * 28) % 256).astype(np.uint8).reshape(3, 2, 28, 28)
    save_snapshots(tmp_path, [0, 100, 250], images)
    steps, loaded = load_snapshots(tmp_path)
    assert steps.tolist() == [0, 100, 250] and np.array_equal(loaded, images)
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(ValueError):
        save_snapshots(tmp_path, [0, 1], images)
    (tmp_path / FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_snapshots(tmp_path)
    with pytest.raises(CheckpointError, match="without snapshots"):
        load_snapshots(tmp_path / "nothing-here")


def test_recorder_keeps_early_steps_densely_and_records_curves(tmp_path):
    model = small_gan()
    recorder = SnapshotRecorder(model, min_gap=100, growth=1.5)
    for step in range(100, 3001, 100):
        recorder.update({"step": step, "d_loss": 1.0, "g_loss": 2.0, "preview": model.preview()})
    assert recorder.steps[:4] == [0, 100, 200, 300]
    gaps = np.diff(recorder.steps)
    assert gaps[-1] > gaps[0]  # sparser later
    assert recorder.curves["step"] == list(range(100, 3001, 100)) and len(recorder.curves["d_loss"]) == 30
    recorder.save(tmp_path)
    steps, images = load_snapshots(tmp_path)
    assert steps.tolist() == recorder.steps and images.shape == (len(steps), 64, 28, 28)
    assert np.array_equal(images[0], to_uint8(model.preview()))


# --- the classifier ----------------------------------------------------------------------------
def test_classifier_features_and_labelled_batches():
    model = api.build("mnist-classifier")
    x = torch.rand(5, 784, generator=gen(0))
    assert model.features(x).shape == (5, 128) and model.logits(x).shape == (5, 10)
    assert model.embed(x, batch_size=2).shape == (5, 128)
    rows = clf.labelled(x, torch.tensor([0, 1, 2, 3, 9]))
    images, labels = clf.split(rows)
    assert torch.equal(images, x) and labels.tolist() == [0, 1, 2, 3, 9]
    batches = list(clf.labelled_batches(x, torch.arange(5), 2, generator=gen(0)))
    assert len(batches) == 2 and all(b.shape == (2, 785) for b in batches)


def test_classifier_learns_a_separable_toy_problem():
    """Two classes of images (dark vs bright): a few steps of training must reach full accuracy."""
    torch.manual_seed(0)
    model = api.build("mnist-classifier", width=4, features=8)
    opts = model.make_optimizers(lr=1e-2)
    y = torch.arange(64) % 2
    x = (torch.rand(64, 784, generator=gen(1)) * 0.3 + 0.6 * y[:, None]).clamp(0, 1)
    for _ in range(30):
        out = model.train_step(clf.labelled(x, y), opts)
    assert out["accuracy"] == 1.0
    assert (model.predict(x) == y).all()


@pytest.mark.skipif("mnist-classifier" not in api.bundled(), reason="bundled classifier not trained yet")
def test_bundled_classifier_card_states_its_accuracy():
    metrics = checkpoint.read_metrics(api.resolve("mnist-classifier"))
    assert metrics["test"]["accuracy"] > 0.98
    assert f"{metrics['test']['accuracy']:.4f}" in (api.resolve("mnist-classifier") / "README.md").read_text()
