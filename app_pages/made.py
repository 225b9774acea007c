"""NADE and MADE: the lecture's slides "Fully Observed Models" (density estimation by autoregression, the
ordering of variables, NADE and MADE), live on models trained by the project's CLI and on the page."""
from app import made_views as views
from app import widgets
from app.resources import require_mnist

widgets.header(
    "NADE and MADE",
    "A fully observed model needs no latent variables: the chain rule writes any distribution over the pixels "
    "as a product of one-dimensional conditionals, each a Bernoulli whose probability a network predicts from "
    "the pixels before it. **NADE** shares one hidden layer between all 784 conditionals with tied weights; "
    "**MADE** takes an ordinary autoencoder and masks its weights so that output i never sees input i or "
    "anything after it. Both give the exact likelihood in one pass, and sample one pixel at a time.",
    r"p(x)=\prod_{i=1}^{D}p\big(x_i\mid x_{<i}\big),\qquad "
    r"p\big(x_i=1\mid x_{<i}\big)=\sigma\big(b_i+V_{i,\cdot}\,h_i(x_{<i})\big)",
)
require_mnist()
VIEWS = {
    "chain": ("The chain rule", views.chain),
    "masks": ("Masks", views.masks),
    "ensemble": ("Mask ensembles", views.ensemble),
    "sampling": ("Pixel by pixel", views.sampling),
    "train": ("Train a MADE", views.train),
    "nll": ("Test NLL", views.nll),
}
if not views.ensemble_sources():  # only a MADE trained with several masks has an ensemble
    del VIEWS["ensemble"]
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="made_view")
VIEWS[view][1]()
