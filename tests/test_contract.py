"""The model contract, checked for every registered family (a new @register is tested automatically).

Each family is built from its "tiny" preset when it has one. Batches are random binary tensors shaped
like the model's samples, so no dataset is needed.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine import checkpoint, registry
from engine.checkpoint import CheckpointError
from engine.train import Trainer

NAMES = registry.names()


def build_tiny(name: str, seed: int = 0):
    """A small instance of a registered family: its "tiny" preset config, else the defaults."""
    model_cls, config_cls = registry.lookup(name)
    overrides = getattr(model_cls, "presets", {}).get("tiny", {}).get("config", {})
    torch.manual_seed(seed)
    return model_cls(config_cls(**overrides))


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def data_shape(model) -> tuple[int, ...]:
    """Shape of one example, read off a sample (and checked against n_visible where the config has it)."""
    shape = tuple(model.sample(1, generator=gen(0)).shape[1:])
    if hasattr(model.config, "n_visible"):
        assert shape == (model.config.n_visible,)
    return shape


def binary_batch(model, n: int = 8, seed: int = 1) -> torch.Tensor:
    """Random binary data shaped like the model's samples; models of token ids (language models) give their
    own `example_batch`, since 0/1 ids would leave most of an adaptive embedding without a gradient."""
    if hasattr(model, "example_batch"):
        return model.example_batch(n, generator=gen(seed))
    return (torch.rand(n, *data_shape(model), generator=gen(seed)) < 0.3).float()


def assert_same(a, b, path: str = "state") -> None:
    """Nested equality of dicts/lists/tuples of tensors and plain values."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def test_registry_is_not_empty_and_names_are_unique():
    assert "rbm" in NAMES
    assert len(NAMES) == len(set(NAMES))
    for name in NAMES:
        model_cls, config_cls = registry.lookup(name)
        assert model_cls.model_type == name and dataclasses.is_dataclass(config_cls)
    with pytest.raises(KeyError, match="unknown model"):
        registry.lookup("no-such-model")


@pytest.mark.parametrize("name", NAMES)
def test_config_is_a_frozen_dataclass(name):
    model = build_tiny(name)
    assert dataclasses.is_dataclass(model.config)
    field = dataclasses.fields(model.config)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(model.config, field, getattr(model.config, field))


@pytest.mark.parametrize("name", NAMES)
def test_loss_is_finite_and_gives_finite_gradients(name):
    model = build_tiny(name)
    terms = model.loss(binary_batch(model))
    assert isinstance(terms, dict) and "loss" in terms
    assert terms["loss"].shape == () and torch.isfinite(terms["loss"])
    terms["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{pname} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_and_seed(name):
    model = build_tiny(name)
    shape = data_shape(model)
    s = model.sample(5, generator=gen(7))
    assert s.shape == (5, *shape)
    assert torch.isfinite(s).all()
    assert torch.equal(s, model.sample(5, generator=gen(7)))
    assert not torch.equal(s, model.sample(5, generator=gen(8)))


@pytest.mark.parametrize("name", NAMES)
def test_train_step_returns_floats_and_changes_parameters(name):
    model = build_tiny(name)
    batch = binary_batch(model, n=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizers = model.make_optimizers()
    out = model.train_step(batch, optimizers, generator=gen(3))
    assert isinstance(out, dict) and out
    for k, v in out.items():
        assert isinstance(v, float) and math.isfinite(v), (k, v)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "train_step left every parameter unchanged"


@pytest.mark.parametrize("name", NAMES)
def test_save_load_roundtrip(name, tmp_path):
    model = build_tiny(name)
    model.train_step(binary_batch(model, n=16), model.make_optimizers(), generator=gen(3))  # not the init
    model.eval()
    checkpoint.save(model, tmp_path, card="# card\n", metrics={"nll": 1.5})
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "model.safetensors", "README.md", "metrics.json"}
    loaded = checkpoint.load(tmp_path)
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    assert_same(model.state_dict(), loaded.state_dict())
    assert torch.equal(model.sample(4, generator=gen(11)), loaded.sample(4, generator=gen(11)))
    batch = binary_batch(model)
    for ability in ("free_energy", "log_prob"):
        if hasattr(model, ability):
            stochastic = "generator" in inspect.signature(getattr(model, ability)).parameters
            kwargs = (lambda: {"generator": gen(5)}) if stochastic else dict
            with torch.no_grad():
                assert torch.equal(getattr(model, ability)(batch, **kwargs()), getattr(loaded, ability)(batch, **kwargs()))
    assert checkpoint.read_metrics(tmp_path) == {"nll": 1.5}
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == name
    assert checkpoint.fingerprint(tmp_path) == checkpoint.fingerprint(checkpoint.save(loaded, tmp_path / "again"))
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))  # no temp files left behind


# --- damaged checkpoints: always CheckpointError, with a message naming the problem ------------------
def saved(name: str, folder):
    model = build_tiny(name)
    checkpoint.save(model, folder)
    return model


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "header-only"])
def test_corrupt_weights_raise_checkpoint_error(name, damage, tmp_path):
    saved(name, tmp_path)
    weights = tmp_path / "model.safetensors"
    raw = weights.read_bytes()
    weights.write_bytes({"truncated": raw[: len(raw) // 2], "garbage": bytes(range(256)) * 8,
                         "empty": b"", "header-only": raw[:8]}[damage])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_missing_files_raise_checkpoint_error(name, tmp_path):
    saved(name, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json"):
        checkpoint.load(tmp_path)
    with pytest.raises(CheckpointError, match="no config.json"):
        checkpoint.load(tmp_path / "does-not-exist")


def edit_config(folder, **changes) -> None:
    path = folder / "config.json"
    values = json.loads(path.read_text())
    values.update(changes)
    path.write_text(json.dumps(values))


@pytest.mark.parametrize("name", NAMES)
def test_bad_config_raises_checkpoint_error(name, tmp_path):
    saved(name, tmp_path)
    edit_config(tmp_path, model_type="no-such-model")
    with pytest.raises(CheckpointError, match="unknown model 'no-such-model'"):
        checkpoint.load(tmp_path)
    edit_config(tmp_path, model_type=name, no_such_field=3)
    with pytest.raises(CheckpointError, match="no_such_field"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        checkpoint.load(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="model_type"):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_impossible_config_values_raise_checkpoint_error(name, tmp_path):
    """A hand-edited config with negative sizes must not escape as a bare torch error."""
    model = saved(name, tmp_path)
    ints = {f.name: -1 for f in dataclasses.fields(model.config)
            if isinstance(getattr(model.config, f.name), int) and not isinstance(getattr(model.config, f.name), bool)}
    assert ints, "expected at least one integer size in the config"
    edit_config(tmp_path, **ints)
    with pytest.raises(CheckpointError, match=name):
        checkpoint.load(tmp_path)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_shaped_or_missing_weight_raises_checkpoint_error(name, tmp_path):
    saved(name, tmp_path)
    weights = tmp_path / "model.safetensors"
    state = load_file(weights)
    key = next(iter(state))
    wrong = dict(state, **{key: torch.zeros(state[key].shape[0] + 1, *state[key].shape[1:])})
    save_file(wrong, weights)
    with pytest.raises(CheckpointError, match="do not match") as err:
        checkpoint.load(tmp_path)
    assert key in str(err.value)
    save_file({k: v for k, v in state.items() if k != key}, weights)
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoint.load(tmp_path)
    save_file(dict(state, extra=torch.zeros(2)), weights)
    with pytest.raises(CheckpointError, match="do not match"):
        checkpoint.load(tmp_path)


# --- resume state ------------------------------------------------------------------------------------
def trained_trainer(name: str):
    model = build_tiny(name)
    batches = [binary_batch(model, n=16, seed=s) for s in range(3)]
    trainer = Trainer(model=model, batches=lambda g: iter(batches), epochs=1, log_every=2)
    updates = list(trainer.run())
    assert updates[-1]["epoch_end"] and trainer.step == 3
    return trainer


@pytest.mark.parametrize("name", NAMES)
def test_resume_state_roundtrip(name, tmp_path):
    trainer = trained_trainer(name)
    assert checkpoint.load_resume_state(tmp_path) is None  # nothing saved yet
    state = trainer.state_dict()
    checkpoint.save_resume_state(state, tmp_path)
    loaded = checkpoint.load_resume_state(tmp_path)
    assert_same(state, loaded)
    fresh = Trainer(model=build_tiny(name, seed=1), batches=lambda g: iter(()), epochs=2)
    fresh.load_state_dict(loaded)
    assert (fresh.epoch, fresh.step) == (1, 3)
    assert_same(state, fresh.state_dict())
    assert torch.equal(fresh.generator.get_state(), trainer.generator.get_state())


class NotATensor:
    """Any plain Python object: weights_only loading must refuse to build it."""


def test_resume_state_never_unpickles_code(tmp_path):
    torch.save({"step": 1, "payload": NotATensor()}, tmp_path / "resume.pt")
    with pytest.raises(CheckpointError, match="cannot be read for resuming"):
        checkpoint.load_resume_state(tmp_path)
    (tmp_path / "resume.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="cannot be read for resuming"):
        checkpoint.load_resume_state(tmp_path)
