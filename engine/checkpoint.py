"""Checkpoints in the huggingface_hub mixin layout: config.json + model.safetensors + README.md (model card).

`config.json` holds the dataclass config plus `model_type` (the registry name); weights are loaded with
`strict=True`. Every file is written to a temporary name and moved into place with `os.replace`, so a
crash never leaves half a file. Optimizer/resume state lives apart in `resume.pt`, read with
`torch.load(weights_only=True)` (tensors and plain containers only, never code).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine import registry

CONFIG, WEIGHTS, CARD, METRICS, RESUME = "config.json", "model.safetensors", "README.md", "metrics.json", "resume.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, truncated, or does not match its model; the message says which."""


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then move tmp_path onto path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def config_dict(model) -> dict:
    return {"model_type": model.model_type, **dataclasses.asdict(model.config)}


def config_from_dict(config_cls: type, values: dict):
    """Build a config dataclass from JSON values (lists become tuples where the field is a tuple)."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise CheckpointError(f"config.json has fields {sorted(unknown)} that {config_cls.__name__} does not know")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config_cls(**kwargs)


def save(model, directory: str | Path, *, card: str | None = None, metrics: dict | None = None,
         dtype: torch.dtype | None = None) -> Path:
    """Write config.json, model.safetensors and (if given) the model card and metrics.json.

    `dtype=torch.float16` stores floating-point tensors at half precision (half the file size, for
    bundled checkpoints); `load` converts them back to the model's dtype."""
    directory = Path(directory)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if dtype is not None:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
    atomic_write(directory / WEIGHTS, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    _write_text(directory / CONFIG, json.dumps(config_dict(model), indent=2) + "\n")
    if card is not None:
        _write_text(directory / CARD, card)
    if metrics is not None:
        _write_text(directory / METRICS, json.dumps(metrics, indent=2) + "\n")
    return directory


def read_config(directory: str | Path) -> tuple[str, dict]:
    """(model_type, config values) from a checkpoint folder's config.json."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"no {CONFIG} in {directory}: not a DGM Explorer checkpoint")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(values, dict) or "model_type" not in values:
        raise CheckpointError(f"{path} has no 'model_type' field")
    return values.pop("model_type"), values


def load(directory: str | Path, *, device: torch.device | str = "cpu"):
    """Build the registered model named in config.json and load its weights with strict=True."""
    model_type, values = read_config(directory)
    try:
        model_cls, config_cls = registry.lookup(model_type)
    except KeyError as e:
        raise CheckpointError(str(e)) from e
    try:
        model = model_cls(config_from_dict(config_cls, values))
    except (TypeError, ValueError, RuntimeError) as e:  # RuntimeError: torch rejects e.g. a negative size
        raise CheckpointError(f"config.json in {directory} does not describe a valid {model_type}: {e}") from e
    weights = Path(directory) / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"no {WEIGHTS} in {directory}")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or truncated: {e}") from e
    own = model.state_dict()
    state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"weights in {weights} do not match the {model_type} config: {e}") from e
    return model.to(device).eval()


def read_metrics(directory: str | Path) -> dict:
    """The measured metrics stored beside a checkpoint ({} when there are none)."""
    path = Path(directory) / METRICS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def fingerprint(directory: str | Path) -> str:
    """A short content hash of the weights: a cache key that changes whenever the checkpoint does."""
    return hashlib.sha256((Path(directory) / WEIGHTS).read_bytes()).hexdigest()[:16]


def save_resume_state(state: dict, directory: str | Path) -> None:
    """Optimizer state, RNG state and counters for resuming training (tensors and plain containers)."""
    atomic_write(Path(directory) / RESUME, lambda tmp: torch.save(state, tmp))


def load_resume_state(directory: str | Path) -> dict | None:
    path = Path(directory) / RESUME
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a damaged zip; all mean "cannot resume"
        raise CheckpointError(f"{path} cannot be read for resuming: {e}") from e


def from_pretrained(repo_id_or_path: str, *, local_files_only: bool = True, device="cpu"):
    """Load from a local folder, or from a Hugging Face Hub repo (only the local cache unless told otherwise)."""
    if Path(repo_id_or_path).is_dir():
        return load(repo_id_or_path, device=device)
    from huggingface_hub import snapshot_download
    try:
        folder = snapshot_download(repo_id_or_path, local_files_only=local_files_only)
    except Exception as e:  # offline, unknown repo, or auth: say so plainly
        raise CheckpointError(f"could not get {repo_id_or_path} from the Hugging Face Hub: {e}") from e
    return load(folder, device=device)


def push_to_hub(model, repo_id: str, *, card: str | None = None, metrics: dict | None = None) -> str:
    """Save into a temporary folder and upload it as a model repo; returns the repo URL."""
    from huggingface_hub import HfApi
    api = HfApi()
    with tempfile.TemporaryDirectory() as tmp:
        save(model, tmp, card=card, metrics=metrics)
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(folder_path=tmp, repo_id=repo_id)
    return f"https://huggingface.co/{repo_id}"
