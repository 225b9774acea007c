"""The Helmholtz machine page's computations: explaining away exactly, wake/sleep frames, and gradient noise.

- Explaining away (Pearl 1988; the Helmholtz machine's motivating example in Hinton et al. 1995): two binary
  causes, one binary effect observed on. The exact posterior over the 4 cause states, the factorial q that
  minimises the inclusive KL(p || q) (what the sleep phase fits: the exact marginals, which spreads mass over
  both modes) and the factorial q that minimises the exclusive KL(q || p) (the ELBO-optimal q: one mode).
- Wake/sleep frames: what one wake step and one sleep step see and change, as data for a browser animation.
- Gradient signal-to-noise: the score-function gradient (with and without a baseline) against the
  reparameterization gradient of the ELBO in the recognition net's outputs, measured by repeated draws.
- Enumeration helpers for tiny sigmoid belief nets (exact log p(x), exact posteriors), used by the tests.
All log-probabilities are in nats.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

STATES = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])  # the 4 cause states (c1, c2), in this order everywhere


# --- explaining away, exactly -------------------------------------------------------------------------
def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def log_joint_causes(prior: tuple[float, float], weights: tuple[float, float], bias: float) -> np.ndarray:
    """log p(c1, c2, e = 1) for the 4 states (STATES order): independent causes with p(c_i = 1) = prior[i],
    and p(e = 1 | c) = sigmoid(bias + w1 c1 + w2 c2). Returns (4,)."""
    p = np.asarray(prior, dtype=np.float64)
    log_prior = (STATES * np.log(p) + (1 - STATES) * np.log1p(-p)).sum(1)
    logits = bias + STATES @ np.asarray(weights, dtype=np.float64)
    return log_prior - np.logaddexp(0, -logits)  # log sigmoid


def factorial(q: np.ndarray) -> np.ndarray:
    """The product distribution of two Bernoulli marginals q = (q1, q2) over the 4 states: (4,)."""
    q1, q2 = q
    return np.array([(1 - q1) * (1 - q2), (1 - q1) * q2, q1 * (1 - q2), q1 * q2])


def kl(a: np.ndarray, b: np.ndarray) -> float:
    """KL(a || b) in nats for distributions over the same states (0 log 0 = 0; inf where b = 0 < a)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mask = a > 0
    with np.errstate(divide="ignore"):
        return float((a[mask] * (np.log(a[mask]) - np.log(b[mask]))).sum())


def elbo_of(q: np.ndarray, log_joint: np.ndarray) -> float:
    """E_q[log p(c, e)] + H(q) for a factorial q = (q1, q2): log p(e) - KL(q || p(c|e))."""
    f = factorial(q)
    mask = f > 0
    return float((f[mask] * (log_joint[mask] - np.log(f[mask]))).sum())


def elbo_optimal_factorial(log_joint: np.ndarray, *, grid: int = 161, sweeps: int = 200) -> np.ndarray:
    """argmin over factorial q of KL(q || p(c | e)) (= argmax of the ELBO): the best point of a grid in
    (0, 1)^2, refined by mean-field coordinate updates q_i = sigmoid(E_{q_j}[log p(c_i=1, c_j, e)
    - log p(c_i=0, c_j, e)]), each of which can only raise the ELBO. Returns (q1, q2)."""
    t = _sigmoid(np.linspace(-12, 12, grid))  # dense near 0 and 1, where the optimum often sits
    q1, q2 = np.meshgrid(t, t, indexing="ij")
    f = np.stack([(1 - q1) * (1 - q2), (1 - q1) * q2, q1 * (1 - q2), q1 * q2], -1)  # (G, G, 4)
    values = (f * (log_joint - np.log(f))).sum(-1)
    i, j = np.unravel_index(np.argmax(values), values.shape)
    q = np.array([t[i], t[j]])
    L = log_joint.reshape(2, 2)  # L[c1, c2]
    for _ in range(sweeps):
        q[0] = _sigmoid((1 - q[1]) * (L[1, 0] - L[0, 0]) + q[1] * (L[1, 1] - L[0, 1]))
        q[1] = _sigmoid((1 - q[0]) * (L[0, 1] - L[0, 0]) + q[0] * (L[1, 1] - L[1, 0]))
    return q


def explaining_away(prior: tuple[float, float], weights: tuple[float, float], bias: float) -> dict:
    """The toy, exactly: posterior p(c | e = 1) over STATES, and the two factorial fits with both KLs.

    "sleep": argmin_q KL(p || q) = the posterior's marginals (what the sleep phase learns: mode-averaging);
    "elbo": argmin_q KL(q || p) (what maximising the ELBO learns: one mode). Values in nats."""
    log_joint = log_joint_causes(prior, weights, bias)
    log_evidence = float(np.logaddexp.reduce(log_joint))
    posterior = np.exp(log_joint - log_evidence)
    sleep_q = np.array([posterior[2] + posterior[3], posterior[1] + posterior[3]])
    elbo_q = elbo_optimal_factorial(log_joint)
    fits = {}
    for name, q in (("sleep", sleep_q), ("elbo", elbo_q)):
        f = factorial(q)
        fits[name] = {"q": q, "distribution": f, "kl_p_q": kl(posterior, f), "kl_q_p": kl(f, posterior),
                      "elbo": elbo_of(q, log_joint)}
    return {"posterior": posterior, "log_evidence": log_evidence, "fits": fits, "states": STATES}


# --- tiny sigmoid belief nets by enumeration ------------------------------------------------------------
def all_binary(n: int) -> torch.Tensor:
    """Every binary vector of length n, (2^n, n) float32, in counting order."""
    return torch.tensor(list(itertools.product((0.0, 1.0), repeat=n)))


def exact_log_joint_table(model, x: torch.Tensor) -> torch.Tensor:
    """log p(x, h) for every hidden state h of a Bernoulli-latent model: x (B, D) -> (2^H, B)."""
    h = all_binary(model.config.n_hidden).to(x.device)[:, None, :]  # (S, 1, H)
    return model.log_joint(x, h.expand(-1, len(x), -1))


def exact_log_prob(model, x: torch.Tensor) -> torch.Tensor:
    """Exact log p(x) = logsumexp_h log p(x, h) of a tiny SBN: (B, D) -> (B,)."""
    return torch.logsumexp(exact_log_joint_table(model, x), 0)


# --- one wake step and one sleep step, as frames ------------------------------------------------------
@torch.no_grad()
def wake_sleep_frames(model, x: torch.Tensor, *, seed: int = 0, step_size: float = 0.01) -> dict:
    """What one wake step and one sleep step of a Bernoulli-latent Helmholtz machine see and change.

    x: one binary digit (D,). Returns {"frames": [...], "wake": {...}, "sleep": {...}}; each frame has
    "phase", "label", "hidden" (H,) and "visible" (D,) in [0, 1] (None = not yet computed), "signal" (the
    update's error signal, signed, on the layer named by "signal_on") and "active" ("up", "down" or None).
    The wake/sleep dicts give the log-probability the phase ascends, before and after one plain gradient step
    of `step_size` on this one example (the generative weights in the wake phase, the recognition weights in
    the sleep phase), in nats."""
    if model.gaussian:
        raise ValueError("wake-sleep frames need binary latent units (a sigmoid belief net)")
    g = torch.Generator(device=model.device).manual_seed(seed)
    x = x.reshape(1, -1).to(model.device)
    W, b, c = model.generative.weight, model.generative.bias, model.prior_logits
    R, d = model.recognition.weight, model.recognition.bias
    # wake: up, sample, down, and the generative delta rule
    q = torch.sigmoid(model.recognize(x))  # (1, H)
    h = (torch.rand(q.shape, generator=g, device=x.device) < q).float()
    p = torch.sigmoid(model.pixel_logits(h))  # (1, D)
    before = float(model.log_joint(x, h))
    err_x, err_h = x - p, h - torch.sigmoid(c)
    W2, b2, c2 = W + step_size * err_x.T @ h, b + step_size * err_x[0], c + step_size * err_h[0]
    after = float(_log_bern(h @ W2.T + b2, x) + _log_bern(c2, h))
    # sleep: a dream down, the recognition net up on it, and the recognition delta rule
    h_s, x_s = model.dream(1, generator=g)
    q_s = torch.sigmoid(model.recognize(x_s))
    before_q = float(model.log_q(x_s, h_s))
    err_q = h_s - q_s
    R2, d2 = R + step_size * err_q.T @ x_s, d + step_size * err_q[0]
    after_q = float(_log_bern(x_s @ R2.T + d2, h_s))
    n = lambda t: t[0].cpu().numpy()  # noqa: E731
    frames = [
        _frame("wake", "Wake 1/4 · a data digit x arrives", None, n(x), None),
        _frame("wake", "Wake 2/4 · recognition pass up: q(h=1|x)", n(q), n(x), "up"),
        _frame("wake", "Wake 3/4 · a code is sampled: h ~ q(h|x)", n(h), n(x), None),
        _frame("wake", "Wake 4/4 · generative pass down p(x|h); update W += ε (x − p(x|h)) hᵀ", n(h), n(p), "down",
               signal=n(err_x), signal_on="visible"),
        _frame("sleep", "Sleep 1/4 · a dream code from the prior: h ~ p(h)", n(h_s), None, None),
        _frame("sleep", "Sleep 2/4 · generative pass down: a dream x ~ p(x|h)", n(h_s), n(x_s), "down"),
        _frame("sleep", "Sleep 3/4 · recognition pass up on the dream: q(h=1|x)", n(q_s), n(x_s), "up"),
        _frame("sleep", "Sleep 4/4 · update R += ε (h − q(h|x)) xᵀ", n(h_s), n(x_s), "up", signal=n(err_q),
               signal_on="hidden"),
    ]
    return {"frames": frames, "step_size": step_size,
            "wake": {"log_p_xh_before": before, "log_p_xh_after": after, "code_units_on": int(h.sum())},
            "sleep": {"log_q_before": before_q, "log_q_after": after_q, "code_units_on": int(h_s.sum())}}


def _log_bern(logits: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    return (values * logits - torch.nn.functional.softplus(logits)).sum()


def _frame(phase, label, hidden, visible, active, *, signal=None, signal_on=None) -> dict:
    return {"phase": phase, "label": label, "hidden": hidden, "visible": visible, "active": active,
            "signal": signal, "signal_on": signal_on}


# --- gradient noise: score function vs reparameterization ---------------------------------------------
def _signal_and_noise(grads: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, ||E g||^2 (without the noise's bias: ||mean||^2 - trace(Cov) / R) and the noise E ||g - E g||^2
    over R one-draw estimates: grads (R, B, P) -> (B,), (B,)."""
    noise = grads.var(0).sum(-1)  # trace of the covariance
    return (grads.mean(0).pow(2).sum(-1) - noise / grads.shape[0]).clamp_min(0), noise


def gradient_snr(model, x: torch.Tensor, *, draws: int = 400, baseline_draws: int = 10, seed: int = 0) -> dict:
    """Signal-to-noise of one-sample estimates of the ELBO's gradient in the recognition net's outputs.

    x: (B, D) binary digits. For each image and each of `draws` independent draws z ~ q(z|x), three estimates of
    d ELBO / d(recognition outputs): "score" = log w(z) * d log q(z|x); "score_baseline" = (log w(z) - b(x)) *
    d log q(z|x) with b(x) the mean of log w over `baseline_draws` other, independent draws (so still unbiased);
    "reparam" (Gaussian latents only) = d log w(mu + sigma * eps) by autograd. The recognition outputs are
    (mu, log sigma^2) for Gaussian latents, the logits for binary ones; for a fixed image a weight's gradient is
    an output's gradient times a pixel, so the weights' gradients are as noisy). All three estimate the same
    gradient, so the signal ||E g|| per image is measured once, from the quietest estimator ("signal_from":
    reparam, else score_baseline; its squared mean less the noise's bias), and each estimator's SNR is that
    signal over its own noise sqrt(E ||g - E g||^2). Returns, per estimator, the median SNR over images, the mean
    per-coordinate variance, and the mean gradient itself (B, outputs)."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    x = x.to(model.device)
    out = model.recognize(x).detach()  # (B, H) or (B, 2H)
    H = model.config.n_hidden
    results = {}
    with torch.no_grad():
        baseline = model.log_weights(x, baseline_draws, generator=g).mean(0)  # (B,)
    params = out.expand(draws, *out.shape).clone().requires_grad_(True)  # one copy per draw: per-draw gradients
    if model.gaussian:
        mu, logvar = params[..., :H], params[..., H:]
        eps = torch.randn(mu.shape, generator=g, device=x.device)
        z = mu + torch.exp(0.5 * logvar) * eps
        log_q = -0.5 * (eps ** 2 + math.log(2 * math.pi) + logvar).sum(-1)
        log_w = model.log_joint(x, z) - log_q  # (R, B)
        (reparam,) = torch.autograd.grad(log_w.sum(), params)
        z_fixed = z.detach()
        log_q_fixed = (-0.5 * ((z_fixed - mu) ** 2 / torch.exp(logvar) + math.log(2 * math.pi) + logvar)).sum(-1)
        (score_dir,) = torch.autograd.grad(log_q_fixed.sum(), params)
        results["reparam"] = reparam
    else:
        with torch.no_grad():
            h = (torch.rand(params.shape, generator=g, device=x.device) < torch.sigmoid(params)).float()
            log_w = model.log_joint(x, h) - model.log_q(x, h)
            score_dir = h - torch.sigmoid(params)  # d log q(h|x) / d logits
    lw = log_w.detach()[..., None]
    results["score_baseline"] = (lw - baseline[:, None]) * score_dir
    results["score"] = lw * score_dir
    reference = "reparam" if "reparam" in results else "score_baseline"  # the quietest: its mean is the signal
    signal, _ = _signal_and_noise(results[reference].detach())
    out = {}
    for name, gr in results.items():
        _, noise = _signal_and_noise(gr.detach())
        out[name] = {"median_snr": float((signal / noise.clamp_min(1e-30)).sqrt().median()),
                     "mean_variance": float(gr.var(0).mean()), "mean": gr.mean(0).detach()}
    return out | {"draws": draws, "images": len(x), "baseline_draws": baseline_draws, "signal_from": reference}
