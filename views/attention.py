"""Attention: which earlier tokens each head of a Transformer looks at, for a text you type.

Thin page: `lm.inspect` picks a first text the model can read and that fits its context, runs the model's trace
(cached per model and text, so moving a slider only re-slices it) and summarises the heads; `lm.viz` draws
every figure.
"""

import math

import streamlit as st

from lm.models import families_for_page
from lm import viz
from lm.inspect import MAX_TEXT_CHARS, describe_head, head_summary, notable_head
from lm.viz.attention import attention_on_text
from ui.i18n import _, language
from ui.loaders import available_models, inspection
from ui.state import init_from_query, write_query
from ui.texts import keep_valid, model_text_inspection, pick_model, plain_caption
from ui.widgets import clamp_state

TEXTS = {  # a first text per corpus: previous-token, name-matching and punctuation heads, within the context
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\n"
                   "O Romeo, Romeo! wherefore art thou Romeo?",  # 107 characters: the char model sees 128
    "names": "anna\nhannah\nmaria\nmarianne\n",  # 27 characters: the names models see 32
    "python": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
}
LAST = 10**6  # "the last token": clamped to the text's length


@st.cache_resource(max_entries=16, show_spinner=False)
def heads_views(model_name: str, text: str, lang: str):
    """The all-heads grid, the per-head summary and the head to show first: they depend on the text only (and
    `lang`, the session's language: the figures' titles and labels are written in it, so it is in the key)."""
    trace = inspection(model_name, text).trace
    summary = head_summary(trace.attention, trace.head_output_norm)
    T = trace.attention.shape[-1]
    return (viz.attention_grid(trace.attention), viz.head_summary_figure(summary.entropy, summary.distance,
                                                                         math.log(T) or None, title=None),
            summary, notable_head(summary))


def show_head(layer: int, head: int) -> None:
    st.session_state["att_layer"], st.session_state["att_head"] = layer, head


@st.fragment
def head_view(name: str, text: str) -> None:
    """Layer/head/token pickers and the views they drive: a fragment, so a slider re-runs only this part."""
    ins = inspection(name, text)
    attention = ins.trace.attention  # [layers, heads, T, T]
    layers, heads, T = attention.shape[:3]
    clamp_state({"att_layer": (0, layers - 1), "att_head": (0, heads - 1), "att_token": (0, T - 1)})
    for key, count in (("att_layer", layers), ("att_head", heads), ("att_token", T)):
        keep_valid(key, range(count), 0 if key != "att_token" else T - 1)  # a crafted message sends any string
    cols = st.columns([1, 1, 4])
    cols[0].selectbox(_("Layer"), range(layers), key="att_layer")
    cols[1].selectbox(_("Head"), range(heads), key="att_head")
    cols[2].select_slider(_("Attention from token"), range(T), key="att_token",
                          format_func=lambda t: f"{t}: {viz.visible(ins.tokens[t], 16)}")
    write_query(["att_model", "att_text", "att_layer", "att_head", "att_token"])
    layer, head, token = st.session_state["att_layer"], st.session_state["att_head"], st.session_state["att_token"]
    summary, clearest = heads_views(name, text, language())[2:]
    st.caption(describe_head(summary, layer, head, math.log(T) or None))
    if (layer, head) != clearest:
        hint, button = st.columns([4, 1], vertical_alignment="center")
        hint.caption(_("The clearest pattern on this text: {pattern}").format(
            pattern=describe_head(summary, *clearest)))
        button.button(_("Show layer {layer}, head {head}").format(layer=clearest[0], head=clearest[1]),
                      key="att_clearest", on_click=show_head, args=clearest)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(viz.attention_heatmap(attention[layer, head], ins.tokens,
                                              title=_("Layer {layer}, head {head}").format(layer=layer, head=head)),
                        key="att_heatmap", width="stretch", theme=None)
    with right:
        st.subheader(_("Where token {token} looks").format(token=token))
        plain_caption(_("token {token}: {piece}").format(token=token, piece=viz.visible(ins.tokens[token], 16)))
        st.markdown(attention_on_text(ins.pieces, attention[layer, head, token], token), unsafe_allow_html=True)
        st.caption(_("Darker = more attention (relative to the strongest). Hover a token for its weight. "
                     "A causal model cannot look ahead, so later tokens stay blank."))


def main() -> None:
    st.title(_("Attention"))
    info = pick_model(available_models(families=families_for_page("attention")), "att_model",
                      empty=_("No Transformer models yet — train one on the Train page (or import GPT-2 with "
                              "`python -m lm`)."))
    if info is None:
        return
    name = info.name
    found = model_text_inspection(
        info, "att_text", TEXTS, _("Each head of each layer decides how much every earlier token matters for the "
                                   "current one. Rows: the token doing the looking (query); columns: the tokens it "
                                   "looks at (keys)."), MAX_TEXT_CHARS)
    if found is None:
        return
    text, ins = found
    grid, summary_fig = heads_views(name, text, language())[:2]
    init_from_query({"att_layer": 0, "att_head": 0, "att_token": LAST})
    head_view(name, text)
    st.subheader(_("Every head at once"))
    st.caption(_("Look for patterns: a bright diagonal just below the main one is a previous-token head; a bright "
                 "first column is a head that parks its attention on the first token."))
    st.plotly_chart(grid, key="att_grid", width="stretch", theme=None)
    st.subheader(_("Per-head summary"))
    st.plotly_chart(summary_fig, key="att_summary", width="stretch", theme=None)
    rows = heads_views(name, text, language())[2].rows()
    with st.expander(_("Table of every head")):
        st.dataframe(rows, key="att_table", hide_index=True,
                     column_config={k: st.column_config.NumberColumn(format="%.3f") for k in rows[0]
                                    if k not in ("layer", "head")})


main()
