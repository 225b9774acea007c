"""Which model a page shows: a bundled checkpoint, or the one trained on the page in this session.

The RBM, DBN, DBM and part-features pages share this chooser. Each passes its family name, which also
prefixes the session-state keys: "<family>_user_model", "<family>_user_key", "<family>_user_metrics"
and the sidebar radio "<family>_source".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import streamlit as st

from app.resources import bundled_fingerprint, bundled_metrics, bundled_model, bundled_names, loadable


@dataclass(frozen=True)
class Source:
    """One choice of the sidebar: a bundled checkpoint (key = its fingerprint) or the page's model (key "user-...")."""
    family: str
    label: str
    key: str  # cache key of every figure drawn from this model

    @property
    def user(self) -> bool:
        return self.key.startswith("user-")

    @property
    def model(self):
        return st.session_state.get(f"{self.family}_user_model") if self.user else bundled_model(self.label)

    @property
    def metrics(self) -> dict:
        """The bundled card's measured numbers, or what the page measured for its own model ({} if nothing)."""
        if self.user:
            return st.session_state.get(f"{self.family}_user_metrics") or {}
        return bundled_metrics(self.label)


def source_picker(family: str, *, title: str, user_label: str, describe: Callable[[object], str]) -> Source | None:
    """Sidebar radio between the bundled models of `family` that load and the page's own model (selected
    once it exists, else the first bundled one); `describe(model)` is the caption under it. None: no model."""
    options = [Source(family, name, bundled_fingerprint(name)) for name in bundled_names(family) if loadable(name)]
    has_user = st.session_state.get(f"{family}_user_model") is not None
    if has_user:
        options.append(Source(family, user_label, st.session_state[f"{family}_user_key"]))
    if not options:
        return None
    by_label = {o.label: o for o in options}
    with st.sidebar:
        label = st.radio(title, list(by_label), index=len(options) - 1 if has_user else 0, key=f"{family}_source")
        st.caption(describe(by_label[label].model))
    return by_label[label]


def use_model(family: str, user_label: str, model, *, key: str | None = None, metrics: dict | None = None) -> None:
    """Button callback (it runs before the page, so it may set the sidebar radio): show `model` on every view."""
    st.session_state[f"{family}_user_model"] = model
    st.session_state[f"{family}_user_key"] = key or f"user-{time.time_ns()}"
    st.session_state[f"{family}_user_metrics"] = metrics
    st.session_state[f"{family}_source"] = user_label
