"""LM Playground — the Streamlit entry point. It only routes: each page lives in pages/."""

import streamlit as st

st.set_page_config(page_title="LM Playground", page_icon="🎭", layout="wide")
st.title("LM Playground")
st.write("Prompt small language models — n-gram, LSTM and Transformer — and see inside them. Pages are coming.")
