"""Command line: python -m engine {list,train,eval,chains,sample} ...

    python -m engine train rbm --preset bundled --out assets/checkpoints/rbm-mnist
    python -m engine eval assets/checkpoints/rbm-mnist --ais-runs 100 --ais-betas 14500 --write
    python -m engine chains assets/checkpoints/rbm-mnist -n 500 --sweeps 1000
    python -m engine sample assets/checkpoints/rbm-mnist -n 64 --out samples.png
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from engine import api, cards, chains, checkpoint
from engine.device import pick
from engine.snapshots import SnapshotRecorder


def _bar(fraction: float, text: str) -> None:
    filled = int(30 * fraction)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * fraction:5.1f}% {text}   ")
    sys.stderr.flush()


def cmd_list(args) -> None:
    for name in api.model_names():
        print(name)
    for name, folder in api.bundled().items():
        print(f"bundled: {name} ({folder})")


def cmd_train(args) -> None:
    recipe = api.preset(args.model, args.preset)
    for item in args.set or []:
        key, value = item.split("=", 1)
        recipe["train"][key] = json.loads(value) if value[:1] in "0123456789-[{tf" else value
    if args.epochs:
        recipe["train"]["epochs"] = args.epochs
    out = Path(args.out)
    device = pick(args.device)
    resume = checkpoint.load_resume_state(out) if args.resume else None
    if args.resume and resume is None and not args.warm_start:
        raise SystemExit(f"{out} has no resume.pt; --warm-start continues from its weights with fresh optimizers")
    continuing = resume is not None or args.warm_start
    model = api.load(out, device=device) if continuing else api.new_model_for_training(args.model, recipe["config"])
    model.to(device)
    trainer = api.make_trainer(model, recipe["train"], seed=args.seed)
    earlier = api.read_metrics(out).get("training", {}) if continuing else {}
    if resume:  # the recipe's cosine schedule wins over the saved one, so --epochs can shorten or extend a run
        schedules = [_total_steps(opt) for opt in trainer.optimizers]
        trainer.load_state_dict(resume)
        for opt, total in zip(trainer.optimizers, schedules):
            if total is not None:
                opt.param_groups[0]["total_steps"] = total
    elif continuing:  # warm start: the saved weights and counters, new optimizer moments and data order
        trainer.epoch, trainer.step = int(earlier.get("epochs", 0)), int(earlier.get("steps", 0))
        trainer.generator.manual_seed(args.seed + 1000 * trainer.epoch)
    recorder = SnapshotRecorder(model) if getattr(model, "records_snapshots", False) else None
    if recorder and continuing:
        recorder.restore(out, earlier.get("curves"))
    start = time.time()
    for m in trainer.run():
        shown = {k: round(v, 3) for k, v in m.items() if isinstance(v, float) and k not in ("progress", "elapsed_s")}
        _bar(m["progress"], f"epoch {m['epoch']} step {m['step']} {shown}")
        if recorder:
            recorder.update(m)
        if m.get("epoch_end"):
            checkpoint.save(model, out)
            checkpoint.save_resume_state(trainer.state_dict(), out)
            if recorder:
                recorder.save(out)
    sys.stderr.write("\n")
    history = {"steps": trainer.step, "epochs": trainer.epoch, "seconds": round(time.time() - start, 1),
               "preset": args.preset, "seed": args.seed, "train": recipe["train"], "device": str(device)}
    if earlier.get("seconds"):  # resumed: the time of the earlier sessions counts too
        history.update(seconds=round(history["seconds"] + earlier["seconds"], 1),
                       sessions=earlier.get("sessions", 1) + 1)
    if continuing and earlier.get("preset", args.preset) != args.preset:  # continued under another recipe
        history["earlier_stages"] = [*earlier.get("earlier_stages", []),
                                     {k: earlier.get(k) for k in ("preset", "steps", "epochs", "train")}]
    elif earlier.get("earlier_stages"):
        history["earlier_stages"] = earlier["earlier_stages"]
    if continuing and resume is None:
        history["warm_starts_at_step"] = [*earlier.get("warm_starts_at_step", []), int(earlier.get("steps", 0))]
    if hasattr(model, "recalibrate"):  # e.g. a GAN generator's BatchNorm statistics at the final weights
        model.recalibrate()
    if recorder:  # the fixed-noise grid over training (snapshots.safetensors) and the curves
        recorder.keep(trainer.step, model.preview())
        recorder.save(out)
        history["curves"] = recorder.curves
    checkpoint.save(model, out, metrics={"training": history})
    print(f"saved {out} after {trainer.step} steps")
    if args.ais_runs:
        _evaluate(model, out, args.ais_runs, args.ais_betas, history)


def _total_steps(opt) -> int | None:
    """A torch optimizer's scheduled length (engine.optim), None for one without a schedule or for the
    learning rules that are not torch optimizers (the RBM's, DBN's, DBM's and part stack's)."""
    groups = getattr(opt, "param_groups", None)
    return groups[0].get("total_steps") if groups else None


def _evaluate(model, out: Path, runs: int, betas: int, history: dict | None = None) -> None:
    result = None
    for update in api.iter_rbm_log_likelihood(model.cpu(), n_runs=runs, n_betas=betas):
        _bar(update["progress"], f"AIS log Z ~ {update.get('log_z', 0):.2f}")
        result = update.get("result", result)
    sys.stderr.write("\n")
    metrics = api.read_metrics(out)
    metrics["test_log_likelihood"] = result
    if history:
        metrics["training"] = history
    card = cards.rbm_card(model, metrics)
    checkpoint.save(model, out, card=card, metrics=metrics)
    print(f"AIS test log-likelihood: {result['test_log_likelihood']:.2f} ± {result['test_log_likelihood_stderr']:.2f} nats "
          f"(log Z = {result['log_z']:.2f}, {runs} runs, {betas} temperatures)")


def _evaluate_vae(model, out: Path, k: int, n_images: int) -> None:
    result = None
    for update in api.iter_vae_evaluation(model, k=k, n_images=n_images):
        _bar(update["progress"], f"importance sampling with k = {k}")
        result = update.get("result", result)
    sys.stderr.write("\n")
    metrics = api.read_metrics(out)
    metrics["test"] = result
    checkpoint.save(model, out, card=cards.vae_card(model, metrics), metrics=metrics)
    print(f"test ELBO {result['elbo']:.2f}, L_50 {result['iwae_50_bound']:.2f}, IS NLL estimate "
          f"{result['nll_is']:.2f} ± {result['nll_is_stderr']:.2f} nats (k = {k}, first {n_images} test images), "
          f"{result['active_units']} active units")


def _evaluate_autoencoder(model, out: Path) -> None:
    """Test squared error against PCA (and, on MNIST, retrieval precision); stores the weights as float16."""
    checkpoint.save(model, out, dtype=torch.float16)
    model = api.load(out)  # measure what is stored
    faces = model.dataset == "faces-25"
    model.fit_codes(api.faces.images("valid") if faces else api.mnist.images("valid"))  # sample()'s code Gaussian
    result = api.evaluate_faces_autoencoder(model) if faces else api.evaluate_autoencoder(model)
    metrics = {**api.read_metrics(out), **result}
    checkpoint.save(model, out, card=cards.ae_card(model, metrics), metrics=metrics, dtype=torch.float16)
    se, ret = metrics["test_squared_error"], metrics.get("retrieval")
    print(f"test squared error per image: autoencoder {se['autoencoder']:.2f}, PCA({se['code_size']}) "
          f"{se['pca']:.2f} (ratio {se['ratio']:.2f})"
          + (f"; precision@{ret['k']}: {ret['autoencoder']:.3f} vs {ret['pca']:.3f}" if ret else ""))


def _evaluate_gan(model, out: Path, n: int) -> None:
    """FD, precision and recall of n samples vs the MNIST test set, and the real-digit floor."""
    result = api.evaluate_generator(model, api.load("mnist-classifier"), n=n)
    metrics = {**api.read_metrics(out), "quality": result}
    checkpoint.save(model, out, card=cards.gan_card(model, metrics), metrics=metrics)
    for who in ("model", "floor"):
        r = result[who]
        print(f"{who}: FD {r['fd']:.2f}, precision {r['precision']:.3f}, recall {r['recall']:.3f} ({r['n']} digits)")


def _evaluate_language_model(model, out: Path) -> None:
    """WikiText-2 test perplexity (XL: against evaluation memory length, headline chosen on validation;
    vanilla: fixed segments and overlapping windows); for XL also the live-page curves: perplexity vs memory
    beside the bundled vanilla model, and the evaluation speed-up. Stores the weights as float16."""
    checkpoint.save(model, out, dtype=torch.float16)
    model = api.load(out)  # measure what is stored
    metrics = {**api.read_metrics(out), "test": api.evaluate_language_model(model)}
    test = metrics["test"]
    if model.model_type == "transformer-xl":
        vanilla_folder = out.parent / "vanilla-wikitext2"
        vanilla = api.load(vanilla_folder) if (vanilla_folder / checkpoint.CONFIG).is_file() else None
        metrics["context_curve"] = {"mem_len": test["curve"]["mem_len"], "xl_ppl": test["curve"]["test_ppl"],
                                    "vanilla_ppl": api.read_metrics(vanilla_folder).get("test", {}).get("ppl")
                                    if vanilla else None, "tokens": test["tokens"],
                                    "split": f"{test['split']}, {test['streams']} parallel streams"}
        if vanilla is not None:
            for update in api.iter_txl_speed_curve(model, vanilla, (64, 128, 256, 512, 768, 1024)):
                _bar(update["progress"], "timing state reuse vs recomputation")
            metrics["eval_speed"] = update["result"]
            sys.stderr.write("\n")
    checkpoint.save(model, out, card=cards.txl_card(model, metrics), metrics=metrics, dtype=torch.float16)
    print(json.dumps({k: v for k, v in test.items() if k != "curve"}, indent=1))
    if "curve" in test:
        print("memory:", test["curve"]["mem_len"], "\ntest ppl:", [round(p, 1) for p in test["curve"]["test_ppl"]])


def _evaluate_dbm(model, out: Path, runs: int, betas: int, is_images: int) -> None:
    from engine.models.dbm import iter_evaluation
    result = None
    for update in iter_evaluation(model, n_runs=runs, n_betas=betas, is_images=is_images):
        _bar(update["progress"], update.get("stage", ""))
        result = update.get("result", result)
    sys.stderr.write("\n")
    metrics = {**api.read_metrics(out), "test_log_likelihood": result}
    checkpoint.save(model, out, card=cards.dbm_card(model, metrics), metrics=metrics)
    z, mf, est = result["log_z"], result["mf_bound"], result["is_estimate"]
    print(f"log Z = {z['estimate']:.2f} ± {z['std_error']:.3f} (AIS, {z['n_runs']} runs, {z['n_betas']} betas); "
          f"test MF bound {mf['mean']:.2f} ± {mf['stderr_with_log_z']:.2f} nats; IS estimate {est['mean']:.2f} "
          f"(k = {est['k']}, {est['images']} images, bound there {est['bound_on_same_images']:.2f}, mean ESS "
          f"{est['ess_mean']:.1f})")


def _evaluate_dbn(model, out: Path, runs: int, betas: int, is_k: int, is_images: int) -> None:
    """A DBN's variational lower bound and IS estimate (AIS for the top RBM's log Z), and the card."""
    result = None
    for update in api.iter_dbn_evaluation(model, n_runs=runs, n_betas=betas, is_k=is_k, is_images=is_images):
        _bar(update["progress"], update.get("stage", ""))
        result = update.get("result", result)
    sys.stderr.write("\n")
    metrics = {**api.read_metrics(out), "test_log_likelihood": result}
    if model.config.base_rbm:
        metrics["base_rbm"] = api.read_metrics(api.resolve(model.config.base_rbm))
    checkpoint.save(model, out, card=cards.dbn_card(model, metrics), metrics=metrics)
    print(f"test lower bound {result['lower_bound']:.2f} ± {result['lower_bound_stderr']:.2f} nats; IS estimate "
          f"{result['is_estimate']:.2f} (k = {is_k}, {result['is_images']} images; bound there "
          f"{result['same_images_lower_bound']:.2f}); log Z = {result['log_z']:.2f} ± {result['log_z_std']:.3f}")


def cmd_eval(args) -> None:
    model = api.load(args.checkpoint)
    folder = api.resolve(args.checkpoint)
    if model.model_type == "parts":  # faces, not MNIST: locality of the parts and dead units (no AIS)
        metrics = {**api.read_metrics(folder), **api.evaluate_parts(model)}
        checkpoint.save(model, folder, card=cards.parts_card(model, metrics), metrics=metrics)
        print(json.dumps({k: v for k, v in metrics["parts"].items() if k != "locality"}, indent=1))
    elif hasattr(model, "free_energy"):
        _evaluate(model, folder, args.ais_runs, args.ais_betas)
    elif model.model_type == "helmholtz":  # IS test NLL (k = 1000) and the ELBO on the first --is-images seeded test digits
        test = api.evaluate_helmholtz(model, n_images=args.is_images,
                                      progress=lambda f: _bar(f, "importance sampling with k = 1000"))
        metrics = {**api.read_metrics(folder), "test": test}
        checkpoint.save(model, folder, card=cards.helmholtz_card(model, metrics), metrics=metrics)
        print(f"\ntest IS NLL {test['nll_is']:.2f} ± {test['nll_is_stderr']:.2f}, ELBO {test['elbo']:.2f} nats")
    elif model.model_type == "dbn":  # the variational lower bound and an IS estimate; AIS on the top RBM
        _evaluate_dbn(model, folder, args.ais_runs, args.ais_betas, args.is_k, args.is_images)
    elif model.model_type == "dbm":  # AIS log Z (h1 summed out), the mean-field bound, IS over h1, and the card
        _evaluate_dbm(model, folder, args.ais_runs, args.ais_betas, args.is_images)
    elif model.model_type == "autoencoder":
        _evaluate_autoencoder(model, folder)
    elif model.model_type in ("planar", "realnvp2d"):  # 2-D flows: KL / NLL with grid checks, and the card
        result = api.evaluate_flow2d(model)
        checkpoint.save(model, folder, card=cards.flow2d_card(model, {**api.read_metrics(folder), **result}),
                        metrics={**api.read_metrics(folder), **result})
        print(json.dumps(result, indent=1))
    elif model.model_type == "dcgan":
        _evaluate_gan(model, folder, args.gan_samples)
    elif model.model_type == "pointgan":  # shapes covered, Chamfer fidelity vs real-to-real; float16 weights
        checkpoint.save(model, folder, dtype=torch.float16)
        model = api.load(folder)  # measure what is stored
        metrics = {**api.read_metrics(folder), **api.evaluate_pointgan(model)}
        checkpoint.save(model, folder, card=cards.pointgan_card(model, metrics), metrics=metrics, dtype=torch.float16)
        print(json.dumps({k: metrics[k] for k in ("shapes", "chamfer")}, indent=1))
    elif model.model_type in ("transformer-xl", "vanilla-transformer"):
        _evaluate_language_model(model, folder)
    elif model.model_type == "wavenet":  # test bits/sample on all 300 FSDD test clips, with the count baselines
        metrics = {**api.read_metrics(folder), **api.evaluate_wavenet(model)}
        checkpoint.save(model, folder, card=cards.wavenet_card(model, metrics), metrics=metrics)
        print(json.dumps(metrics["test_bits_per_sample"], indent=1))
    elif model.model_type == "fsdd-classifier":  # accuracy on all 300 FSDD test clips, per digit, and the card
        metrics = {**api.read_metrics(folder), **api.fsdd_classifier.evaluate(model)}
        checkpoint.save(model, folder, card=cards.fsdd_classifier_card(model, metrics), metrics=metrics)
        print(f"test accuracy {metrics['test_accuracy']['accuracy']:.4f}")
    elif model.model_type == "mnist-classifier":
        metrics = {**api.read_metrics(folder), "test": api.classifier_accuracy(model)}
        checkpoint.save(model, folder, card=cards.classifier_card(model, metrics), metrics=metrics)
        print(f"test accuracy {metrics['test']['accuracy']:.4f}")
    elif model.model_type == "glow":  # test bits/dim (fixed dequantization seed) as its four terms
        metrics = {**api.read_metrics(folder), **api.evaluate_glow(model)}
        checkpoint.save(model, folder, card=cards.glow_card(model, metrics), metrics=metrics)
        print(json.dumps(metrics["test_bits_per_dim"], indent=1))
    elif model.model_type in ("made", "nade"):  # exact test NLL (nats, bits/dim); MADE: the 1..K mask-ensemble curve
        metrics = {**api.read_metrics(folder), **api.evaluate_autoregressive(model)}
        checkpoint.save(model, folder, card=cards.autoregressive_card(model, metrics), metrics=metrics)
        print(json.dumps(metrics["test_nll"], indent=1))
    elif model.model_type in ("pixelcnn", "gated-pixelcnn"):  # exact test NLL (nats, bits/dim) and the card
        metrics = {**api.read_metrics(folder), **api.evaluate_pixelcnn(model)}
        checkpoint.save(model, folder, card=cards.pixelcnn_card(model, metrics), metrics=metrics)
        print(json.dumps(metrics["test_nll"], indent=1))
    elif hasattr(model, "log_prob"):
        _evaluate_vae(model, folder, args.is_k, args.is_images)
    else:
        sys.exit(f"{args.checkpoint}: eval supports models with a free energy (AIS), autoencoders (squared "
                 "error vs PCA) or a log_prob (IS)")


def cmd_sample(args) -> None:
    from PIL import Image
    model = api.load(args.checkpoint)
    images = model.sample(args.n, generator=torch.Generator().manual_seed(args.seed))
    h, w = model.config.image_shape
    side = int(args.n ** 0.5 + 0.999)
    grid = torch.ones(side * (h + 1) + 1, side * (w + 1) + 1)
    for i, im in enumerate(images.reshape(-1, h, w)):
        r, c = divmod(i, side)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = im
    Image.fromarray((grid.numpy() * 255).astype("uint8")).resize((grid.shape[1] * 4, grid.shape[0] * 4), 0).save(args.out)
    print(f"wrote {args.out}")


def cmd_chains(args) -> None:
    """Draw a Boltzmann machine's equilibrium chains once and keep them beside its checkpoint (engine.chains)."""
    model = api.load(args.checkpoint)
    if not hasattr(model, "gradient_terms"):
        raise SystemExit(f"error: {model.model_type} keeps no equilibrium chains (only an RBM does)")
    folder = api.resolve(args.checkpoint)
    path = chains.save(folder, chains.draw(model, args.n, args.sweeps, args.seed), sweeps=args.sweeps, seed=args.seed)
    print(f"wrote {path}: {args.n} chains after {args.sweeps} Gibbs sweeps from noise (seed {args.seed})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine", description="DGM Explorer engine")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered models and bundled checkpoints").set_defaults(func=cmd_list)
    t = sub.add_parser("train", help="train a model from a preset")
    t.add_argument("model")
    t.add_argument("--preset", default="bundled")
    t.add_argument("--out", required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int)
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training setting")
    t.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    t.add_argument("--resume", action="store_true", help="continue from OUT's resume.pt")
    t.add_argument("--warm-start", action="store_true",
                   help="continue from OUT's weights and step count with fresh optimizer state (no resume.pt)")
    t.add_argument("--ais-runs", type=int, default=0, help="evaluate with AIS after training (0: skip)")
    t.add_argument("--ais-betas", type=int, default=14500)
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="AIS test log-likelihood; writes metrics.json and the model card")
    e.add_argument("checkpoint")
    e.add_argument("--ais-runs", type=int, default=100)
    e.add_argument("--ais-betas", type=int, default=14500)
    e.add_argument("--is-k", type=int, default=5000, help="importance samples per image (VAE/IWAE)")
    e.add_argument("--is-images", type=int, default=2000, help="test images for the IS estimate")
    e.add_argument("--gan-samples", type=int, default=10_000, help="generated digits for FD/precision/recall")
    e.set_defaults(func=cmd_eval)
    c = sub.add_parser("chains", help="keep an RBM's equilibrium chains beside its checkpoint (chains.safetensors)")
    c.add_argument("checkpoint")
    c.add_argument("-n", type=int, default=500)
    c.add_argument("--sweeps", type=int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.set_defaults(func=cmd_chains)
    s = sub.add_parser("sample", help="write a PNG grid of samples")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png")
    s.set_defaults(func=cmd_sample)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (checkpoint.CheckpointError, api.DatasetUnavailable, KeyError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
