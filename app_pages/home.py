"""Home: the lecture's framing, the roadmap, and a gallery of samples from every bundled model."""
import streamlit as st

from app import widgets
from app.gallery import GALLERY, samples_png
from app.resources import bundled_metrics
from engine.api import CheckpointError

widgets.header(
    "Deep generative models, live",
    "A generative model learns a probability distribution **p(x)** from data and prior knowledge. "
    "Once learned, **sampling** from it generates new data. Each page of this app trains or loads a real "
    "model and shows what the lecture's slides show.",
)

steps = [("Data", "images, speech, text"), ("Prior knowledge", "architecture, latent variables"),
         ("Learning", "likelihood, variational, adversarial"), ("p(x)", "a density we can sample"),
         ("Sampling", "new images, sounds, sentences")]
for i, (col, (title, text)) in enumerate(zip(st.columns(len(steps)), steps)):
    with col.container(border=True, height="stretch"):
        st.markdown(f"#### {'+ ' if i == 1 else '→ ' if i > 1 else ''}{title}")
        st.caption(text)

st.header("Gallery")
if not GALLERY:
    st.info("No bundled models are installed; train one with `make train-bundled`.")
for entry in GALLERY:
    with st.container(border=True):
        left, right = st.columns([1, 1], vertical_alignment="center")
        try:
            image = entry.picture() if entry.picture else samples_png(entry.checkpoint, temperature=entry.temperature)
        except CheckpointError as e:
            st.error(f"The bundled checkpoint {entry.checkpoint!r} cannot be loaded: {e}")
            continue
        with left:
            widgets.image(image, caption=entry.caption, width="stretch")
        with right:
            st.subheader(entry.title)
            st.markdown(entry.blurb)
            metrics = bundled_metrics(entry.checkpoint).get(entry.metric_key, {})
            if metrics:
                st.caption(entry.metric_label(metrics))
            st.page_link(entry.page, label=f"Open the {entry.short} page", icon=":material/arrow_forward:")
            widgets.download_png(image, f"{entry.checkpoint}-samples.png", key=f"dl-{entry.checkpoint}")

st.header("Roadmap")
st.markdown(
    "The lecture's order. Pages appear in the sidebar as their models land.\n\n"
    "1. **Autoencoders vs PCA** (live)\n"
    "2. Fully observed models: **NADE and MADE** (live), **PixelCNN pixel by pixel** (live), "
    "**WaveNet on speech** (live)\n"
    "3. **Undirected models: restricted Boltzmann machines** (live), **deep belief nets** (live), **deep Boltzmann machines** (live), "
    "**part-based features on faces** (live)\n"
    "4. Directed models: **Helmholtz machines and wake-sleep** (live), **variational and importance-weighted autoencoders** (live)\n"
    "5. **Generative adversarial networks and Wasserstein GANs** (live: the 2-D lab, MNIST, point clouds)\n"
    "6. **Normalizing flows**: change of variables, planar flows, Real NVP on points, **Glow on MNIST** (live)\n"
    "7. **Language models: Transformer-XL** (live: context, attention, generation, evaluation speed)"
)
