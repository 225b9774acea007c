"""Streamlit glue shared by the pages: resources, jobs, plots, widgets. Never model math."""
