"""DGM Explorer engine: pure PyTorch models, data, training and metrics (no Streamlit).

Import the public surface from `engine.api`.
"""
