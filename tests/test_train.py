"""The training loop (engine.train.Trainer) on a tiny RBM with synthetic binary data."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import api, checkpoint
from engine.models.rbm import RBM, RBMConfig
from engine.train import Trainer

DATA = (torch.rand(60, 20, generator=torch.Generator().manual_seed(0)) < 0.3).float()  # (N, D)
HPARAMS = {"lr": 0.1, "k": 1, "persistent": True, "momentum": 0.5, "weight_decay": 1e-4, "lr_decay": True}


def batches(g: torch.Generator):
    """One shuffled epoch of 6 batches of 10, drawn with the trainer's generator."""
    order = torch.randperm(len(DATA), generator=g)
    for start in range(0, len(DATA), 10):
        yield DATA[order[start:start + 10]]


def tiny_rbm(seed: int = 0) -> RBM:
    torch.manual_seed(seed)
    return RBM(RBMConfig(n_visible=20, n_hidden=10, image_shape=(4, 5), init_std=0.1))


def make_trainer(model, *, epochs: int = 2, seed: int = 0, **kwargs) -> Trainer:
    return Trainer(model=model, batches=batches, epochs=epochs, hparams=HPARAMS, seed=seed,
                   log_every=4, steps_per_epoch=6, **kwargs)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_run_yields_counters_logs_and_epoch_ends():
    model = tiny_rbm()
    updates = list(make_trainer(model, monitor_batch=DATA[:20]).run())
    assert [(u["step"], u.get("epoch_end", False)) for u in updates] == [
        (4, False), (6, True), (8, False), (12, False), (12, True)]
    assert [u["epoch"] for u in updates] == [0, 1, 1, 1, 2]
    for u in updates:
        assert u["progress"] == pytest.approx(u["step"] / 12)
        assert u["elapsed_s"] >= 0 and u["examples_per_s"] > 0
        assert "cancelled" not in u
    logs = [u for u in updates if not u.get("epoch_end")]
    for u in logs:
        assert np.isfinite(u["free_energy_gap"])
        assert 0 < u["reconstruction_error"] < 1
        assert u["pseudo_log_likelihood"] < 0
        assert u["preview"].shape == (10, 4, 5)
    assert updates[-1]["progress"] == 1.0
    assert not model.training  # left in eval mode


def test_progress_without_steps_per_epoch_counts_epochs():
    trainer = Trainer(model=tiny_rbm(), batches=batches, epochs=4, hparams=HPARAMS, log_every=1000)
    ends = [u for u in trainer.run() if u.get("epoch_end")]
    assert [u["progress"] for u in ends] == [0.25, 0.5, 0.75, 1.0]
    assert [u["step"] for u in ends] == [6, 12, 18, 24]


def test_preset_cancel_stops_before_any_step():
    model = tiny_rbm()
    before = weights(model)
    trainer = make_trainer(model)
    trainer.cancel.set()
    updates = list(trainer.run())
    assert len(updates) == 1
    assert updates[0]["cancelled"] is True and updates[0]["step"] == 0
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not model.training


def test_cancel_mid_run_stops_at_the_next_batch():
    model = tiny_rbm()
    trainer = make_trainer(model)
    stream = trainer.run()
    first = next(stream)
    assert first["step"] == 4
    at_cancel = weights(model)
    trainer.cancel.set()
    rest = list(stream)
    assert len(rest) == 1 and rest[0]["cancelled"] and rest[0]["step"] == 4
    assert all(torch.equal(v, at_cancel[k]) for k, v in model.state_dict().items())  # model intact


def test_same_seed_gives_identical_weights():
    runs = []
    for seed in (0, 0, 1):
        model = tiny_rbm()  # identical initial weights every time
        list(make_trainer(model, seed=seed).run())
        runs.append(weights(model))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["W"], runs[2]["W"])  # the seed matters
    assert not torch.equal(runs[0]["W"], tiny_rbm().W)  # and training moved the weights


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    """Stop after epoch 1 of 2, save weights + resume state, load both into a new Trainer: same steps, same weights."""
    straight = tiny_rbm()
    full = [u["step"] for u in make_trainer(straight).run()]

    first = tiny_rbm()
    trainer = make_trainer(first)
    for update in trainer.run():
        if update.get("epoch_end"):
            break  # a safe resume point
    assert (trainer.epoch, trainer.step) == (1, 6)
    checkpoint.save(first, tmp_path)
    checkpoint.save_resume_state(trainer.state_dict(), tmp_path)

    resumed_model = checkpoint.load(tmp_path)
    resumed = make_trainer(resumed_model, seed=123)  # the seed is overwritten by the saved generator state
    resumed.load_state_dict(checkpoint.load_resume_state(tmp_path))
    assert (resumed.epoch, resumed.step) == (1, 6)
    steps = [u["step"] for u in resumed.run()]
    assert steps == full[full.index(6) + 1:] == [8, 12, 12]
    assert resumed.step == 12 and resumed.epoch == 2
    assert all(torch.equal(v, straight.state_dict()[k]) for k, v in resumed_model.state_dict().items())


def test_finished_trainer_yields_nothing_more():
    model = tiny_rbm()
    trainer = make_trainer(model, epochs=1)
    list(trainer.run())
    after = weights(model)
    assert list(trainer.run()) == []
    assert all(torch.equal(v, after[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("model", ["rbm", "dbm"])
def test_cli_resume_works_for_learning_rules_that_are_not_torch_optimizers(model, tmp_path, capsys):
    """`train --resume` continues a run of the RBM's CD rule and the DBM's recipe (no torch param_groups) and
    counts on from the saved step."""
    from engine.__main__ import main
    out = str(tmp_path / model)
    main(["train", model, "--preset", "tiny", "--out", out, "--epochs", "1", "--set", "max_steps=4"])
    main(["train", model, "--preset", "tiny", "--out", out, "--epochs", "2", "--set", "max_steps=8", "--resume"])
    assert api.read_metrics(out)["training"]["steps"] == 8
    assert "saved" in capsys.readouterr().out


def test_a_run_continued_under_other_presets_keeps_its_stages(tmp_path):
    """`train --resume` with a new preset records the earlier ones, and the DBM card lists every command in order."""
    from engine.__main__ import main
    from engine.models.dbm import DBM
    out = str(tmp_path / "dbm")
    main(["train", "dbm", "--preset", "tiny", "--out", out, "--epochs", "1", "--set", "max_steps=2"])
    DBM.presets["tiny-again"] = DBM.presets["tiny-third"] = DBM.presets["tiny"]
    try:
        for preset, steps in (("tiny-again", 4), ("tiny-third", 6)):
            main(["train", "dbm", "--preset", preset, "--out", out, "--epochs", "1", "--set", f"max_steps={steps}",
                  "--resume"])
    finally:
        del DBM.presets["tiny-again"], DBM.presets["tiny-third"]
    training = api.read_metrics(out)["training"]
    assert training["preset"] == "tiny-third" and training["steps"] == 6
    assert [(s["preset"], s["steps"]) for s in training["earlier_stages"]] == [("tiny", 2), ("tiny-again", 4)]
    card = api.dbm_card(checkpoint.load(out), {"training": training})
    assert ("`python -m engine train dbm --preset tiny --out <folder>`, then `python -m engine train dbm --preset "
            "tiny-again --out <folder> --resume`, then `python -m engine train dbm --preset tiny-third --out <folder> "
            "--resume`") in card
    assert "until step 2 (epoch 0): the `tiny` preset" in card and "; then the `tiny-again` preset\n" in card
    assert "until step 4 (epoch 0): the `tiny-again` preset" in card and "; then the `tiny-third` preset below" in card
