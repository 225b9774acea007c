"""DGM Explorer entrypoint: page config and navigation in the lecture's order (only pages that work).

Pages live in app_pages/, not pages/: with a pages/ folder beside the entrypoint, Streamlit 1.67 runs
a page file directly (skipping this script) when a server's first visitor opens a link like /rbm."""
import streamlit as st

from app import theme
from app.resources import configure_torch

st.set_page_config(page_title="DGM Explorer", page_icon=":material/blur_on:", layout="wide")
configure_torch()
theme.apply()

pages = {
    "": [st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True)],
    "Autoencoders": [st.Page("app_pages/autoencoders.py", title="Autoencoders vs PCA", icon=":material/compress:",
                             url_path="autoencoders")],
    "Autoregressive models": [
        st.Page("app_pages/made.py", title="NADE and MADE", icon=":material/linear_scale:", url_path="made"),
        st.Page("app_pages/pixelcnn.py", title="PixelCNN pixel by pixel", icon=":material/grid_4x4:",
                url_path="pixelcnn"),
        st.Page("app_pages/wavenet.py", title="WaveNet on speech", icon=":material/graphic_eq:", url_path="wavenet"),
    ],
    "Undirected models": [st.Page("app_pages/rbm.py", title="Restricted Boltzmann machines", icon=":material/grid_on:",
                                  url_path="rbm"),
                          st.Page("app_pages/dbn.py", title="Deep belief nets", icon=":material/stacks:",
                                  url_path="dbn"),
                          st.Page("app_pages/dbm.py", title="Deep Boltzmann machines", icon=":material/hub:",
                                  url_path="dbm"),
                          st.Page("app_pages/parts.py", title="Part-based features", icon=":material/face:",
                                  url_path="parts")],
    "Directed models": [
        st.Page("app_pages/helmholtz.py", title="Helmholtz machines", icon=":material/swap_vert:", url_path="helmholtz"),
        st.Page("app_pages/vae.py", title="Variational autoencoders", icon=":material/scatter_plot:", url_path="vae"),
        st.Page("app_pages/iwae.py", title="Importance-weighted AEs", icon=":material/stacked_line_chart:",
                url_path="iwae"),
    ],
    "Adversarial models": [st.Page("app_pages/gan.py", title="GANs and Wasserstein GANs", icon=":material/sports_kabaddi:",
                                   url_path="gan")],
    "Normalizing flows": [
        st.Page("app_pages/flows.py", title="Normalizing flows", icon=":material/waves:", url_path="flows"),
        st.Page("app_pages/glow.py", title="Glow on MNIST", icon=":material/auto_awesome:", url_path="glow"),
    ],
    "Language models": [st.Page("app_pages/txl.py", title="Transformer-XL", icon=":material/notes:", url_path="txl")],
}
st.navigation(pages).run()
