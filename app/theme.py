"""A little CSS on top of .streamlit/config.toml's theme: less dead space above the title, so one idea fits
on a projected screen."""
import streamlit as st

CSS = """
<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.2rem; padding-bottom: 3rem; max-width: 1400px; }
h1 { font-size: 2.6rem !important; padding-bottom: 0.4rem !important; }
</style>
"""


def apply() -> None:
    st.html(CSS)
