"""The Home page gallery: one entry per bundled model, with cached sample grids."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import streamlit as st
import torch

from app import plots
from app.resources import bundled_fingerprint, bundled_model, bundled_names
from engine.api import fsdd


@dataclass(frozen=True)
class Entry:
    checkpoint: str  # folder under assets/checkpoints
    title: str
    short: str
    page: str
    caption: str
    blurb: str
    metric_key: str
    metric_label: Callable[[dict], str]
    temperature: float | None = None  # sample at this temperature (flows) instead of the model's default
    picture: Callable[[], bytes] | None = None  # a picture of its own instead of a sample grid (audio models)
    needs: Callable[[], bool] = lambda: True  # shown only when this holds too (e.g. its dataset is installed)


def _rbm_label(m: dict) -> str:
    return (f"AIS estimate of the test log-likelihood: {m['test_log_likelihood']:.1f} nats "
            f"({m['split']})")


def _dbn_label(m: dict) -> str:
    return (f"Variational lower bound on the test log-likelihood: {m['lower_bound']:.1f} nats (AIS for the top "
            f"RBM's log Z); importance-sampled estimate {m['is_estimate']:.1f} (k = {m['is_k']:,}, "
            f"{m['is_images']:,} test digits)")


def _dbm_label(m: dict) -> str:
    return (f"Mean-field lower bound on the test log-likelihood: {m['mf_bound']['mean']:.1f} nats (AIS log Z, "
            f"{m['log_z']['n_runs']} runs × {m['log_z']['n_betas']:,} temperatures); importance-sampled estimate "
            f"{m['is_estimate']['mean']:.1f} (k = {m['is_estimate']['k']:,}, {m['is_estimate']['images']} test digits)")


def _vae_label(m: dict) -> str:
    return (f"Importance-sampled test NLL estimate: {m['nll_is']:.1f} nats (k = {m['nll_is_k']}, "
            f"{m['nll_is_images']} test digits); ELBO {m['elbo']:.1f}")


def _helmholtz_label(m: dict) -> str:
    return (f"Importance-sampled test NLL estimate: {m['nll_is']:.1f} ± {m['nll_is_stderr']:.1f} nats (k = "
            f"{m['nll_is_k']:,}, first {m['images']:,} test digits, seeded binarization); ELBO {m['elbo']:.1f}")


def _gan_label(m: dict) -> str:
    q = m["model"]
    return (f"Frechet distance {q['fd']:.1f} (real digits: {m['floor']['fd']:.1f}), precision {q['precision']:.2f}, "
            f"recall {q['recall']:.2f}; {q['n']:,} samples against the MNIST test split, classifier features")


def _glow_label(m: dict) -> str:
    return (f"Test bits/dim {m['total']:.3f} (8-bit MNIST test split, fixed dequantization seed): prior "
            f"{m['prior']:+.2f}, flow log-det {m['flow_logdet']:+.2f}, logit log-det {m['logit_logdet']:+.2f}, +8")


def _made_label(m: dict) -> str:
    return (f"Exact test NLL {m['nats']:.1f} nats ({m['bits_per_dim']:.3f} bits/dim) on the app's seeded test "
            "binarization; the papers' MADE 88.04 and NADE 88.33 used the fixed Larochelle file")


def _wavenet_label(m: dict) -> str:
    b = m["baselines"]
    return (f"Test {m['bits_per_sample']:.2f} bits per sample on all {m['clips']} FSDD test clips (unigram "
            f"{b['unigram']:.2f}, previous sample {b['bigram']:.2f} on the same samples)")


def _wavenet_picture() -> bytes:
    from app import wavenet_views
    return wavenet_views.gallery_png("wavenet-fsdd", bundled_fingerprint("wavenet-fsdd"))


def _pixelcnn_label(m: dict) -> str:
    return (f"Exact test NLL {m['nats']:.1f} nats ({m['bits_per_dim']:.3f} bits/dim) on the app's seeded test "
            "binarization; the paper's 81.30 used the fixed Larochelle file")


_ALL = [
    Entry("rbm-mnist", "Restricted Boltzmann machine", "RBM", "app_pages/rbm.py",
          "Samples after 1,000 Gibbs sweeps from noise",
          "784 binary pixels and 500 binary features, trained with persistent contrastive divergence. "
          "Its filters are pen strokes; alternating Gibbs sampling turns noise into digits.",
          "test_log_likelihood", _rbm_label),
    Entry("dbn-mnist", "Deep belief net", "DBN", "app_pages/dbn.py",
          "Samples: 1,000 Gibbs sweeps in the top RBM, then one stochastic pass down to the pixels",
          "A stack of RBMs learned greedily, one layer at a time, on top of the bundled RBM. Its page builds a "
          "DBN layer by layer live, draws each layer's features, plays the top RBM's chain and tells its "
          "likelihood honestly: a lower bound and an importance-sampled estimate.",
          "test_log_likelihood", _dbn_label),
    Entry("dbm-mnist", "Deep Boltzmann machine", "DBM", "app_pages/dbm.py",
          "Samples: means p(v = 1 | h1) after 1,000 Gibbs sweeps from noise",
          "Two hidden layers (500 and 1,000 units), every connection undirected: pretrained as a stack of RBMs, "
          "then trained jointly with mean field for the data and persistent chains for the model. Its page "
          "plays mean-field inference sweep by sweep, sets it beside a DBN's bottom-up pass, and bounds its "
          "likelihood.",
          "test_log_likelihood", _dbm_label),
    Entry("helmholtz-rws-mnist", "Helmholtz machine", "Helmholtz machine", "app_pages/helmholtz.py",
          "Samples: p(x = 1 | h) for binary codes h drawn from the prior",
          "A sigmoid belief net with 200 binary causes and a recognition net that guesses them, trained by "
          "reweighted wake-sleep. Its page plays the wake and sleep phases on one diagram, solves explaining "
          "away exactly, and sets wake-sleep beside the VAE it led to.",
          "test", _helmholtz_label),
    Entry("vae-mnist", "Variational autoencoder", "VAE", "app_pages/vae.py",
          "Samples: decoder means p(x = 1 | z) for codes z drawn from the prior",
          "A 50-dimensional Gaussian code and a Bernoulli decoder (784-200-200-50, tanh), trained on the "
          "evidence lower bound. Its pages let you drag the code, walk between digits and see the bound tighten.",
          "test", _vae_label),
    Entry("dcgan-mnist", "Generative adversarial network", "GAN", "app_pages/gan.py",
          "Samples: generator outputs G(z) for noise z ~ N(0, I)",
          "A convolutional generator (DCGAN) trained to fool a discriminator. No likelihood at all: its "
          "quality is measured in a classifier's feature space, beside a WGAN-GP's. Its page also has a "
          "2-D lab where you can watch a GAN collapse and a WGAN-GP recover.",
          "quality", _gan_label),
    Entry("glow-mnist", "Glow, a normalizing flow", "Glow", "app_pages/glow.py",
          "Samples at temperature 0.7: x = f(ε) for ε ~ N(0, 0.7² I)",
          "Invertible layers (actnorm, 1×1 convolutions, affine couplings) at two scales, trained on the exact "
          "log-likelihood of dequantized digits. Its page turns the temperature, encodes and decodes a digit "
          "exactly, and follows one through every layer.",
          "test_bits_per_dim", _glow_label, temperature=0.7),
    Entry("made-mnist", "MADE, a masked autoencoder", "NADE and MADE", "app_pages/made.py",
          "Samples drawn one pixel at a time in raster order, each from p(xᵢ = 1 | x<ᵢ)",
          "An autoencoder whose weights are masked so that output i sees only the pixels before i: all 784 "
          "conditionals of the chain rule in one pass, an exact likelihood. Its page draws the masks, splits a "
          "digit's NLL pixel by pixel, plays sampling frame by frame beside the model's beliefs, and trains a "
          "MADE live.",
          "test_nll", _made_label),
    Entry("pixelcnn-mnist", "PixelCNN, an autoregressive model", "PixelCNN", "app_pages/pixelcnn.py",
          "Samples drawn pixel by pixel in raster order, each from p(xᵢ = 1 | x<ᵢ)",
          "A stack of masked convolutions gives every pixel's probability given the pixels before it: an exact "
          "likelihood, and samples one pixel at a time. Its page plays the generation frame by frame with the "
          "model's beliefs, completes half digits, and shows the blind spot that the gated PixelCNN removes.",
          "test_nll", _pixelcnn_label),
    Entry("wavenet-fsdd", "WaveNet on spoken digits", "WaveNet", "app_pages/wavenet.py",
          "Its belief p(q_t | q_<t) over 25 ms of a spoken 'seven' (test split): dark = probable, red = what came",
          "Raw audio, 8,000 mu-law levels a second, each predicted by a softmax from a quarter of a second of "
          "past samples through dilated causal convolutions, conditioned on the digit. Its page plays mu-law "
          "clips, draws the stack, and generates speech-like babble with a naive and a fast sampler.",
          "test_bits_per_sample", _wavenet_label, picture=_wavenet_picture, needs=fsdd.available),
]
GALLERY = [e for e in _ALL if e.checkpoint in bundled_names() and e.needs()]


@st.cache_data(show_spinner="Sampling…", max_entries=16)
def _samples(name: str, fingerprint: str, n: int, seed: int, temperature: float | None) -> bytes:
    model = bundled_model(name)
    extra = {} if temperature is None else {"temperature": temperature}
    with torch.inference_mode():
        x = model.sample(n, generator=torch.Generator().manual_seed(seed), **extra)
    h, w = model.config.image_shape
    return plots.grid_png(x.reshape(n, h, w), cols=6, scale=3)


def samples_png(name: str, n: int = 36, seed: int = 0, temperature: float | None = None) -> bytes:
    return _samples(name, bundled_fingerprint(name), n, seed, temperature)
