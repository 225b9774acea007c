"""Normalizing flows: the lecture's slides "Normalizing Flows" (invertible x = f(z), change of variables,
composed and planar flows, the maximum-likelihood objective, exact likelihood, sampling, inference
z = f^-1(x)), live on bundled planar flows and 2-D Real NVPs."""
import streamlit as st

from app import flow_views as views
from app import widgets

widgets.header(
    "Normalizing flows",
    "A flow pushes a simple density through an invertible map x = f(z). Because f can be undone, the density "
    "of x is exact: the base density at f⁻¹(x) times how much f⁻¹ stretches volume there. Compose many "
    "simple invertible layers and the log-determinants add up.",
    r"\log p_X(x)=\log p_Z\!\big(f^{-1}(x)\big)+\log\left|\det\frac{\partial f^{-1}}{\partial x}\right|,\qquad "
    r"f=f_K\circ\cdots\circ f_1",
)
with st.expander("Two corrections to the slides: the sign of the log-det term, and who proposed planar flows",
                 icon=":material/edit_note:"):
    st.markdown("1. **The sign.** The slide writes log p_X(x) = log p_Z(f⁻¹(x)) **−** log|det ∂f⁻¹/∂x|. "
                "It is a **plus**: log p_X(x) = log p_Z(f⁻¹(x)) + log|det ∂f⁻¹/∂x| "
                "(equivalently, minus log|det ∂f/∂z| at z = f⁻¹(x)), as above.\n"
                "2. **The citation.** Planar flows are from Rezende & Mohamed (2015), *Variational Inference "
                "with Normalizing Flows*, ICML.")

VIEWS = {
    "change": ("Change of variables", views.change_of_variables),
    "layers": ("Layer by layer", views.layers),
    "compare": ("K = 2, 8, 32", views.compare),
    "train": ("Train a planar flow", views.train),
    "realnvp": ("Real NVP on points", views.realnvp),
}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="flows_view")
VIEWS[view][1]()
