"""Attention: which earlier tokens each head of a Transformer looks at, for a text you type.

Thin page: `lm.inspect.text` runs the model's trace (cached per model and text, so moving a slider only re-slices
it) and `lm.viz` draws every figure.
"""

import math

import streamlit as st

from lm.models import families_for_page
from lm import viz
from lm.inspect import head_summary
from ui.loaders import available_models, get_inspection, inspection
from ui.state import init_from_query, write_query
from ui.widgets import clamp_state, model_picker

TEXTS = {  # a first text per corpus that shows previous-token, name-matching and punctuation heads
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is "
                   "the sun.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "names": "anna\nhannah\nmaria\nmarianne\nelena\nhelena\n",
    "python": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
}
LAST = 10**6  # "the last token": clamped to the text's length


@st.cache_resource(max_entries=16, show_spinner=False)
def heads_views(model_name: str, text: str):
    """The all-heads grid and the per-head summary: they depend on the text, not on the sliders."""
    trace = inspection(model_name, text).trace
    summary = head_summary(trace.attention, trace.head_output_norm)
    T = trace.attention.shape[-1]
    return (viz.attention_grid(trace.attention), viz.head_summary_figure(summary.entropy, summary.distance,
                                                                         math.log(T) or None, title=None), summary.rows())


@st.fragment
def head_view(name: str, text: str) -> None:
    """Layer/head/token pickers and the views they drive: a fragment, so a slider re-runs only this part."""
    ins = inspection(name, text)
    attention = ins.trace.attention  # [layers, heads, T, T]
    layers, heads, T, _ = attention.shape
    clamp_state({"att_layer": (0, layers - 1), "att_head": (0, heads - 1), "att_token": (0, T - 1)})
    cols = st.columns([1, 1, 4])
    cols[0].selectbox("Layer", range(layers), key="att_layer")
    cols[1].selectbox("Head", range(heads), key="att_head")
    cols[2].select_slider("Attention from token", range(T), key="att_token",
                          format_func=lambda t: f"{t}: {viz.visible(ins.tokens[t], 16)}")
    write_query(["att_model", "att_text", "att_layer", "att_head", "att_token"])
    layer, head, token = st.session_state["att_layer"], st.session_state["att_head"], st.session_state["att_token"]
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(viz.attention_heatmap(attention[layer, head], ins.tokens,
                                              title=f"Layer {layer}, head {head}"),
                        key="att_heatmap", width="stretch", theme=None)
    with right:
        st.subheader(f"Where token {token} ({viz.visible(ins.tokens[token], 16)}) looks")
        st.markdown(viz.attention_text_html(ins.pieces, attention[layer, head, token], token),
                    unsafe_allow_html=True)
        st.caption("Darker = more attention (relative to the strongest). Hover a token for its weight. "
                   "A causal model cannot look ahead, so later tokens stay blank.")


def main() -> None:
    st.title("Attention")
    info = model_picker(available_models(families=families_for_page("attention")), "att_model",
                        empty="No Transformer models yet — train one on the Train page (or import GPT-2 with "
                              "`python -m lm`).")
    if info is None:
        return
    name = info.name
    init_from_query({"att_text": TEXTS.get(info.corpus, TEXTS["shakespeare"]), "att_layer": 0,
                     "att_head": 0, "att_token": LAST})
    st.caption("Each head of each layer decides how much every earlier token matters for the current one. "
               "Rows: the token doing the looking (query); columns: the tokens it looks at (keys).")
    st.text_area("Text", key="att_text", height=120)
    if get_inspection(name, st.session_state["att_text"]) is None:
        return
    head_view(name, st.session_state["att_text"])
    grid, summary_fig, rows = heads_views(name, st.session_state["att_text"])
    st.subheader("Every head at once")
    st.caption("Look for patterns: a bright diagonal just below the main one is a previous-token head; a bright "
               "first column is a head that parks its attention on the first token.")
    st.plotly_chart(grid, key="att_grid", width="stretch", theme=None)
    st.subheader("Per-head summary")
    st.plotly_chart(summary_fig, key="att_summary", width="stretch", theme=None)
    with st.expander("Table of every head"):
        st.dataframe(rows, key="att_table", hide_index=True,
                     column_config={k: st.column_config.NumberColumn(format="%.3f") for k in rows[0]
                                    if k not in ("layer", "head")})


main()
