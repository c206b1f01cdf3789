"""Why this token? Pick a token of a text and see which earlier tokens each model depended on, switch heads or
units off and watch the prediction and the continuation change, read the logit lens, step through one
attention computation, and look at the embeddings.

Thin page: `lm.app.explain`, `lm.inspect` (attribution, ablation, lens, embeddings) compute, `lm.viz` draws.
Occlusion is computed once per model, text and ablation for every position, so the position slider (in a
fragment) only re-reads rows; integrated gradients, the lens and the steps are cached per position.
"""

import streamlit as st

from lm import viz
from lm.app.compare import default_lineup
from lm.app.explain import ablation_choices, align, attribute_text, continuation, next_distribution
from lm.errors import LMError
from lm.inspect.ablation import family_label, parse_ablation
from lm.inspect.attribution import integrated_gradients, neutral_token
from lm.inspect.embeddings import embedding_projection, nearest_neighbours
from lm.inspect.lens import logit_lens, transformer_steps
from lm.store.registry import list_models
from ui.i18n import _, lazy_gettext, ngettext
from ui.loaders import available_models, cached_model, get_model
from ui.state import init_from_query, write_query
from ui.widgets import clamp_state, md_literal

TEXTS = {  # a first text per corpus where something earlier decides a later token
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the "
                   "sun.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou Romeo?",
    "names": "emma\nolivia\nava\nisabella\nsophia\ncharlotte\nmia\namelia\n",
    "python": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n",
}
LAST = 10**6  # "the last token": clamped to the text's length
LENS_WINDOW = 16  # positions the logit-lens table shows, ending at the explained token


def off(name: str, heads: str, units: str):
    """The ablation the page switched on for `name` (a parse of its URL spelling)."""
    return parse_ablation(cached_model(name).model, heads=heads, units=units)


@st.cache_resource(max_entries=24, show_spinner=lazy_gettext("Attributing every position of the text…"))
def attributed(name: str, text: str, heads: str = "", units: str = ""):
    return attribute_text(cached_model(name), text, off(name, heads, units))


@st.cache_resource(max_entries=64, show_spinner=lazy_gettext("Integrating gradients…"))
def gradients(name: str, text: str, position: int, heads: str = "", units: str = ""):
    loaded = cached_model(name)
    return integrated_gradients(loaded.model, attributed(name, text, heads, units).ids, position,
                                neutral_token(loaded.tokenizer), off(name, heads, units))


@st.cache_resource(max_entries=16, show_spinner=False)
def lens(name: str, text: str, heads: str = "", units: str = ""):
    return logit_lens(cached_model(name).model, attributed(name, text, heads, units).ids, off(name, heads, units))


@st.cache_resource(max_entries=32, show_spinner=False)
def steps(name: str, text: str, position: int, layer: int, head: int, heads: str = ""):
    return transformer_steps(cached_model(name).model, attributed(name, text, heads).ids, position, layer, head,
                             off(name, heads, ""))


@st.cache_resource(max_entries=8, show_spinner=lazy_gettext("Projecting the embeddings…"))
def projection(name: str):
    return embedding_projection(cached_model(name))


@st.cache_data(max_entries=64, show_spinner=lazy_gettext("Writing on…"))
def continued(name: str, prompt: str, seed: int, heads: str = "", units: str = "") -> str:
    return continuation(cached_model(name), prompt, seed, off(name, heads, units))


@st.cache_resource(max_entries=16, show_spinner=False)
def vocabulary(name: str) -> list[str]:
    loaded = cached_model(name)
    return loaded.tokenizer.token_strings(list(range(min(loaded.model.vocab_size, loaded.tokenizer.vocab_size))))


def occlusion_column(name: str, text: str, position: int, spec: tuple[str, str]) -> None:
    """One model's answer: the explained token, its probability, and the occlusion painted on the text."""
    loaded = cached_model(name)
    view = attributed(name, text, *spec)
    st.markdown(f"#### {name}")
    target = viz.visible(view.tokens[position], 16)
    p = next_distribution(loaded.model, view.ids, position, off(name, *spec))[view.ids[position]]
    kind = loaded.model.config.cell.upper() if loaded.family == "rnn" else family_label(loaded.model)
    line = (_("{kind} · token {position} ({target}) · p = {p:.1%} · with the switches below") if any(spec)
            else _("{kind} · token {position} ({target}) · p = {p:.1%}"))
    st.caption(line.format(kind=kind, position=position, target=md_literal(target), p=p))  # target: user text
    st.markdown(_("**Occlusion** (the token replaced by {token})").format(token=viz.visible(view.neutral)))
    st.markdown(viz.attribution_html(view.pieces, view.occlusion[position, :position], position),
                unsafe_allow_html=True)
    if loaded.family == "ngram":
        order = loaded.model.config.order
        st.caption(ngettext("An order-{order} model reads only the last {count} token: everything further back is 0.",
                            "An order-{order} model reads only the last {count} tokens: everything further back "
                            "is 0.", order - 1).format(order=order, count=order - 1))


def gradients_column(name: str, text: str, position: int, spec: tuple[str, str]) -> None:
    """Integrated gradients under a model's occlusion (drawn after every column's occlusion: they take longer)."""
    if cached_model(name).family == "ngram" or not st.session_state["xp_ig"]:
        return
    ig = gradients(name, text, position, *spec)
    st.markdown(_("**Integrated gradients**"))
    st.markdown(viz.attribution_html(attributed(name, text, *spec).pieces, ig.attribution, position),
                unsafe_allow_html=True)
    st.caption(_("Completeness: the values add up to {total:+.2f} nats against a difference of {difference:+.2f} "
                 "from the all-neutral text (error {error:.1%}, {steps} gradient steps).").format(
        total=ig.attribution.sum(), difference=ig.logprob - ig.baseline_logprob, error=ig.completeness_error,
        steps=ig.steps))


def bars_column(name: str, text: str, position: int, spec: tuple[str, str]) -> None:
    """The same attributions as bars over the last context tokens (values easier to compare than colours)."""
    view = attributed(name, text, *spec)
    methods = {_("occlusion"): view.occlusion[position, :position]}
    if cached_model(name).family != "ngram" and st.session_state["xp_ig"]:
        methods[_("integrated gradients")] = gradients(name, text, position, *spec).attribution
    with st.expander(_("As bars")):
        st.plotly_chart(viz.attribution_bars(view.tokens[:position], methods, last=24), key=f"xp_bars_{name}",
                        width="stretch", theme=None)


def ablation_controls(neural: list[str]) -> tuple[str | None, tuple[str, str]]:
    """The model to switch things off in and what (its URL spelling: heads, units)."""
    if not neural:
        st.info(_("Ablation needs a neural model (an LSTM or a Transformer) among the models."))
        return None, ("", "")
    init_from_query({"xp_off": neural[0], "xp_heads": [], "xp_units": ""}, allowed={"xp_off": neural})
    if st.session_state["xp_off"] not in neural:
        st.session_state["xp_off"] = neural[0]
    cols = st.columns([1, 2])
    name = cols[0].selectbox(_("Model"), neural, key="xp_off")
    model = cached_model(name).model
    choices = ablation_choices(model)
    if choices:
        st.session_state["xp_heads"] = [c for c in st.session_state["xp_heads"] if c in choices]
        cols[1].multiselect(_("Switch off (layer.head, or a layer's whole attention / MLP)"), choices, key="xp_heads")
        spec = (",".join(st.session_state["xp_heads"]), "")
    else:
        cols[1].text_input(_("Switch off units (layer.unit, comma-separated, e.g. 0.12,1.40)"), key="xp_units")
        spec = ("", st.session_state["xp_units"])
    try:
        off(name, *spec)
    except LMError as exc:
        st.error(_(str(exc)))
        return name, ("", "")
    return name, spec


def ablation_results(chosen: str | None, spec: tuple[str, str], text: str, pos: int | None) -> None:
    """The next-token distribution with and without the switches, and a continuation of each with one seed."""
    if chosen is None:
        return
    loaded, view = cached_model(chosen), attributed(chosen, text, *spec)
    before = next_distribution(loaded.model, view.ids, pos)
    after = next_distribution(loaded.model, view.ids, pos, off(chosen, *spec))
    prompt = view.text[:view.spans[pos][0]]
    title = _("{model}: the next token after “{text}”").format(model=chosen, text=viz.visible(prompt[-16:], None))
    st.plotly_chart(viz.distribution_change(vocabulary(chosen), before, after, title=title), key="xp_change",
                    width="stretch", theme=None)
    seed = st.session_state["xp_seed"]
    left, right = st.columns(2, border=True)
    left.markdown(_("**The model**"))
    left.markdown(viz.tokens_html([continued(chosen, prompt, seed)]), unsafe_allow_html=True)
    right.markdown(_("**With the switches off** (same seed)"))
    right.markdown(viz.tokens_html([continued(chosen, prompt, seed, *spec)]), unsafe_allow_html=True)


@st.fragment
def explained(names: list[str], text: str) -> None:
    """Everything that depends on the position: a fragment, so the slider re-runs only this part."""
    neural = [n for n in names if cached_model(n).family != "ngram"]
    top, middle, bottom = st.container(), st.container(), st.container()  # drawn in this order, filled out of it
    with bottom:  # the switches come after the attribution on the page, but the attribution depends on them
        st.subheader(_("Switch something off"))
        chosen, spec = ablation_controls(neural)
    specs = {n: (spec if n == chosen else ("", "")) for n in names}
    ref = attributed(names[0], text, *specs[names[0]])
    with top:
        if ref.note:
            st.caption(ref.note)
        clamp_state({"xp_pos": (1, len(ref.ids) - 1)})
        st.select_slider(_("Explain the token at"), list(range(1, len(ref.ids))), key="xp_pos",
                         format_func=lambda t: f"{t}: {viz.visible(ref.tokens[t], 16)}")
    write_query(["xp_pos", "xp_off", "xp_heads", "xp_units"])
    where = st.session_state["xp_pos"]
    positions = {name: align(ref.spans, where, attributed(name, text, *specs[name]).spans) for name in names[1:]}
    positions[names[0]] = where
    with middle:
        st.subheader(_("Which earlier tokens mattered"))
        st.caption(_("Red: the token made the framed one more likely; blue: less likely (nats of log-probability). "
                     "Hover a token for its value. Each model explains the token at the same character."))
        slots = st.columns(len(names), border=True)
        for step in (occlusion_column, gradients_column, bars_column):  # every model's occlusion first: at once
            for slot, name in zip(slots, names):
                with slot:
                    step(name, text, positions[name], specs[name])
    with bottom:
        ablation_results(chosen, spec, text, positions.get(chosen))
    transformers = [n for n in names if cached_model(n).family == "transformer"]
    for name in transformers:
        st.subheader(_("Logit lens: {model}").format(model=name))
        st.caption(_("What the model would predict if it stopped after each layer (through the final LayerNorm and "
                     "the unembedding). The last row is its real prediction."))
        view, pos = attributed(name, text, *specs[name]), positions[name]
        st.plotly_chart(viz.logit_lens_figure(lens(name, text, *specs[name]), vocabulary(name), view.tokens,
                                              start=max(0, pos - LENS_WINDOW), stop=pos),
                        key=f"xp_lens_{name}", width="stretch", theme=None)
    if transformers:
        step_by_step(transformers[0], text, positions[transformers[0]] - 1, specs[transformers[0]][0])


def step_by_step(name: str, text: str, query: int, heads: str) -> None:
    model = cached_model(name).model
    c = model.config
    st.subheader(_("One attention computation, step by step: {model}").format(model=name))
    init_from_query({"xp_layer": 0, "xp_head": 0})
    clamp_state({"xp_layer": (0, c.n_layers - 1), "xp_head": (0, c.n_heads - 1)})
    cols = st.columns(2)
    cols[0].selectbox(_("Layer"), range(c.n_layers), key="xp_layer")
    cols[1].selectbox(_("Head"), range(c.n_heads), key="xp_head")
    write_query(["xp_layer", "xp_head"])
    view = attributed(name, text, heads)
    st.caption(_("The query is token {query} ({token}), the one that predicts the explained token. Every number is "
                 "recomputed from the model's weights.").format(query=query, token=viz.visible(view.tokens[query], 16)))
    figs = viz.steps_figures(steps(name, text, query, st.session_state["xp_layer"], st.session_state["xp_head"],
                                   heads), view.tokens, vocabulary(name))
    for key, fig in figs.items():
        st.plotly_chart(fig, key=f"xp_step_{key}", width="stretch", theme=None)


def embeddings(names: list[str]) -> None:
    neural = [n for n in names if cached_model(n).family != "ngram"]
    if not neural:
        return
    st.subheader(_("Embeddings"))
    st.caption(_("Each model's input embedding table projected on its first two principal components; similar "
                 "tokens sit close. Neighbours are by cosine similarity in the full space."))
    init_from_query({"xp_token": "e"})
    st.text_input(_("Neighbours of the token"), key="xp_token", max_chars=32)
    write_query(["xp_token"])
    for slot, name in zip(st.columns(len(neural)), neural):
        with slot:
            loaded = cached_model(name)
            ids = loaded.tokenizer.encode(st.session_state["xp_token"] or " ")
            token = ids[0] if ids else None
            near = nearest_neighbours(loaded.model, token) if token is not None else []
            st.plotly_chart(viz.embedding_figure(projection(name), token, near, title=name),
                            key=f"xp_embed_{name}", width="stretch", theme=None)
            vocab = vocabulary(name)
            st.caption(_("Nearest: {tokens}").format(
                tokens=", ".join(f"{viz.visible(vocab[i], 12)} ({s:.2f})" for i, s in near)))


def main() -> None:
    st.title(_("Why this token?"))
    infos = {m.name: m for m in available_models()}
    if not infos:
        st.info(_("No models yet — train one on the Train page."))
        return
    init_from_query({"xp_models": default_lineup(list_models())}, allowed={"xp_models": list(infos)})
    st.sidebar.multiselect(_("Models (1–4)"), list(infos), key="xp_models", max_selections=4)
    init_from_query({"xp_seed": 0, "xp_ig": True})
    st.sidebar.number_input(_("Seed"), 0, 10**9, step=1, key="xp_seed",
                            help=_("The same seed for both continuations."))
    st.sidebar.toggle(_("Integrated gradients"), key="xp_ig",
                      help=_("The second attribution method, per position: a Transformer's takes a fraction of a "
                             "second, an LSTM's about one (its path needs many gradient steps). Occlusion is instant."))
    names = list(st.session_state["xp_models"])[:4]
    if not names:
        st.warning(_("Pick 1 to 4 models in the sidebar."))
        return
    init_from_query({"xp_text": TEXTS.get(infos[names[0]].corpus, TEXTS["shakespeare"]), "xp_pos": LAST})
    st.caption(_("Pick a token and see which earlier tokens each model leaned on to predict it: an n-gram can only "
                 "look a few tokens back, an LSTM and a Transformer much further."))
    st.text_area(_("Text"), key="xp_text", height=110)
    write_query(["xp_models", "xp_text", "xp_seed", "xp_ig"])
    text = st.session_state["xp_text"]
    if any(get_model(n) is None for n in names):
        return
    try:
        explained(names, text)
        embeddings(names)
    except LMError as exc:
        st.error(_(str(exc)))


main()
