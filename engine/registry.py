"""The model registry: a name -> (model class, config class) table filled by `@register`."""
from __future__ import annotations

import dataclasses
from typing import Callable

_MODELS: dict[str, tuple[type, type]] = {}


def register(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: `@register("rbm", RBMConfig)` makes the model buildable by name."""
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls.__name__} must be a dataclass")

    def wrap(model_cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        model_cls.model_type = name
        _MODELS[name] = (model_cls, config_cls)
        return model_cls

    return wrap


def names() -> list[str]:
    """Registered model names, in registration order."""
    _load_all()
    return list(_MODELS)


def lookup(name: str) -> tuple[type, type]:
    """(model class, config class) for a registered name, with a clear error otherwise."""
    _load_all()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(_MODELS) or 'none'}")
    return _MODELS[name]


def _load_all() -> None:
    """Importing engine.models registers every family."""
    import engine.models  # noqa: F401
