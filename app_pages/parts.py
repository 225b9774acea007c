"""Part-based features on faces: the lecture's slide "Learning Part-Based Representations" (object parts
and groups of parts, trained on faces; the figure is from Lee et al. 2009), on a stack of two sparse RBMs."""
import streamlit as st

from app import parts_views as views
from app import widgets

widgets.header(
    "Part-based features",
    "Stack two RBMs on faces and the first layer's units become **object parts** (eyes, brows, noses, mouths, "
    "jaw lines) while the second layer's units become **groups of parts**: whole faces. Three choices make "
    "it happen: linear Gaussian visible units on standardized intensities, non-negative weights, and a "
    "target for each hidden unit's mean activation (sparsity; Lee, Ekanadham & Ng 2008).",
    r"E(\mathbf v,\mathbf h)=\tfrac12\|\mathbf v-\mathbf b\|^2-\mathbf v^\top W\mathbf h-\mathbf a^\top\mathbf h",
    r"p(h_j{=}1\mid\mathbf v)=\sigma\big(a_j+\mathbf v^\top W_{:j}\big)\qquad "
    r"p(\mathbf v\mid\mathbf h)=\mathcal N(\mathbf b+W\mathbf h,\,I)",
    r"W\leftarrow\max\big(0,\;W+\epsilon\,(\mathbf E_{data}[\mathbf v\mathbf h^\top]-\mathbf E_{recon}"
    r"[\mathbf v\mathbf h^\top])\big)\qquad a_j\leftarrow a_j+\epsilon\,\lambda\,(q-\bar p_j)",
)
st.caption("v: each pixel's darkness, standardized over the training faces (25×25 Olivetti faces). q: the "
           "sparsity target; p̄_j: unit j's running mean activation. Layer 2 is the same kind of RBM, binary, "
           "trained on samples of p(h | v) (greedy stacking, as in a deep belief net).")

VIEWS = {
    "parts": ("Layer 1: parts", views.parts),
    "groups": ("Layer 2: groups of parts", views.groups),
    "face": ("One face, part by part", views.face),
    "train": ("Make parts appear", views.train),
}

views.require_faces()
source = views.model_picker()
if source is None:
    st.info(f"No parts model is available: {views.BUNDLED!r} is not bundled with this installation. Train one "
            "below, or run `make train-parts`.")
    VIEWS = {"train": VIEWS["train"]}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="parts_view")
VIEWS[view][1](source)
