"""Helmholtz machines: the lecture's slide "Helmholtz Machines" (Hinton, Dayan, Frey & Neal 1995), the line
of directed models with a recognition net that leads to the VAE."""
import streamlit as st

from app import helmholtz_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "Helmholtz machines",
    "A Helmholtz machine is a directed generative net, here a **sigmoid belief net** with one layer of 200 binary "
    "causes h above the pixels x, paired with a **recognition net** q(h|x) that guesses the causes of a digit in "
    "one bottom-up pass. The **wake-sleep** algorithm trains the two nets in turn, each on samples made by the "
    "other, without ever computing the intractable posterior p(h|x). Replace the binary codes with Gaussian ones, "
    "train both nets on one bound with reparameterized samples, and you have the VAE.",
    r"p_\theta(\mathbf x,\mathbf h)=\prod_j\sigma(c_j)^{h_j}\big(1-\sigma(c_j)\big)^{1-h_j}"
    r"\prod_i p\big(x_i\mid\mathbf h\big),\quad p(x_i{=}1\mid\mathbf h)=\sigma\Big(b_i+\sum_j W_{ij}h_j\Big)",
    r"q_\phi(h_j{=}1\mid\mathbf x)=\sigma\Big(d_j+\sum_i R_{ji}x_i\Big)",
    r"\text{wake: }\max_\theta\ \mathbb E_{q_\phi(\mathbf h\mid\mathbf x)}\log p_\theta(\mathbf x,\mathbf h)\qquad"
    r"\text{sleep: }\max_\phi\ \mathbb E_{p_\theta(\mathbf x,\mathbf h)}\log q_\phi(\mathbf h\mid\mathbf x)",
)

VIEWS = {
    "phases": ("Wake and sleep", views.phases),
    "compare": ("WS vs RWS vs VAE", views.compare),
    "explain": ("Explaining away", views.explaining_away),
    "noise": ("Gradient noise", views.noise),
}
NEEDS = {"phases": [views.WS], "compare": list(views.MODELS), "explain": [], "noise": [views.VAE, views.RWS]}

require_mnist()
absent = views.missing()
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="hm_view")
if any(name in absent for name in NEEDS[view]):
    st.info("This view needs the checkpoints named above; the explaining-away view works without any.")
else:
    VIEWS[view][1]()
