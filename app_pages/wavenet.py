"""WaveNet on spoken digits: the lecture's "WaveNet" slides (a generative model of raw audio: mu-law levels, a
stack of dilated causal convolutions, a softmax over the next sample) on the Free Spoken Digit Dataset, live on
the bundled WaveNet trained by the project's CLI."""

from app import wavenet_views as views
from app import widgets

widgets.header(
    "WaveNet on spoken digits",
    "WaveNet models raw audio one sample at a time: each of the 8,000 samples a second is one of 256 mu-law "
    "levels, predicted by a softmax from everything before it. A stack of dilated causal convolutions lets the "
    "prediction hear a quarter of a second back with a few layers; gated units add the digit being spoken. "
    "Training is parallel over time (the true past is fed in); generation is one sample after another.",
    r"p(q_1,\dots,q_T\mid c)=\prod_{t=1}^{T}p(q_t\mid q_1,\dots,q_{t-1},c),\qquad "
    r"z=\tanh(W_{f}\ast x+V_{f}c)\odot\sigma(W_{g}\ast x+V_{g}c)",
)
VIEWS = {
    "mulaw": ("Mu-law", views.mulaw),
    "stack": ("Dilated causal stack", views.stack),
    "predict": ("Teacher-forced prediction", views.predict),
    "generate": ("Generation: naive vs fast", views.generate),
    "vocoder": ("Vocoder: from a spectrogram", views.vocoder),
}
view = widgets.view_selector({k: v[0] for k, v in VIEWS.items()}, key="wavenet_view")
VIEWS[view][1]()
