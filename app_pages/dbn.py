"""Deep belief nets: the lecture's "Deep Belief Networks" and greedy layer-wise learning (Hinton, Osindero & Teh
2006), with the likelihood told honestly as Salakhutdinov & Murray (2008) did: a variational lower bound and
an importance-sampled estimate, with AIS for the top RBM's partition function."""
import streamlit as st

from app import dbn_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Deep belief nets",
    "A deep belief net stacks RBMs. The top two layers keep their undirected RBM; every layer below becomes "
    "directed, generating downwards through the weights it learned as an RBM. Going up, the same weights "
    "(transposed) give a fast, approximate inference q(h | v). It is learned greedily, one RBM at a time.",
    r"P(\mathbf v,\mathbf h_1,\mathbf h_2)=P(\mathbf v\mid\mathbf h_1)\,P(\mathbf h_1,\mathbf h_2),\qquad "
    r"P(v_i{=}1\mid\mathbf h_1)=\sigma\Big(b_i+\sum_j W^{(1)}_{ij}h_{1j}\Big)",
    r"P(\mathbf h_1,\mathbf h_2)=\frac{1}{\mathcal Z}e^{\mathbf h_1^\top W^{(2)}\mathbf h_2+\mathbf b_2^\top\mathbf h_1"
    r"+\mathbf a_2^\top\mathbf h_2}",
)

VIEWS = {
    "build": ("Greedy, layer by layer", views.build),
    "features": ("Features per layer", views.features),
    "samples": ("Samples", views.samples),
    "likelihood": ("Likelihood (bound and IS)", views.likelihood),
}

require_mnist()
source = views.model_picker()
if source is None:
    st.info("No deep belief net is available: none is bundled with this installation. Build one below, or run "
            "`make train-dbn`.")
    VIEWS = {"build": VIEWS["build"]}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="dbn_view")
VIEWS[view][1](source)
