"""Shared Streamlit helpers for the pages: cached model loading, pickers, URL query-string state."""
