"""Transformer-XL: the lecture's slides "Language Modeling", "Vanilla Transformer Language Models", "Training
with Transformer-XL", "Modeling Much Longer Context", "Evaluation with Transformer-XL", the three
"Transformer-XL" formula slides, "Results", "Visualization of Attention" and "Generation / Reference /
XL Generation", live on two word-level models trained on WikiText-2 by this app's CLI."""
from app import txl_text_views as text
from app import txl_views as views
from app import widgets

widgets.header(
    "Transformer-XL",
    "A language model factorises text left to right, one word given all the words before it. A vanilla "
    "Transformer can only condition on a fixed segment. Transformer-XL caches each layer's hidden states of the "
    "previous segment, with the gradient stopped, and attends over [memory ∘ segment] with relative positions, "
    "so its context reaches back across segments, layer by layer.",
    r"P_\theta(\mathbf x)=\prod_{t=1}^T P_\theta(x_t\mid \mathbf x_{<t})",
    r"\tilde{\mathbf h}^{\,n-1}_\tau=\big[\,\mathrm{SG}(\mathbf m^{n-1}_\tau)\circ \mathbf h^{n-1}_\tau\big],\quad "
    r"\mathbf q^n_\tau=\mathbf h^{n-1}_\tau \mathbf W_q,\ \ \mathbf k^n_\tau=\tilde{\mathbf h}^{\,n-1}_\tau \mathbf W_k,"
    r"\ \ \mathbf v^n_\tau=\tilde{\mathbf h}^{\,n-1}_\tau \mathbf W_v",
)

VIEWS = {
    "segments": ("Vanilla vs XL", views.segments),
    "distance": ("Heads by distance", text.attention_distance),
    "attention": ("Attention map", text.attention_map),
    "generate": ("Generation", text.generation),
    "context": ("Context helps", views.context),
    "speed": ("Speed", views.speed),
    "results": ("Results", views.results),
}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="txl_view")
VIEWS[view][1]()
