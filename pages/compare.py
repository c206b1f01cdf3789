"""Compare: one prompt, one set of knobs, one seed, through 2-4 models side by side, then cross-scored."""

import time

import streamlit as st

from lm import viz
from lm.app.compare import (CorpusIndex, corpus_source, cross_score, default_lineup, generate_column, memorisation,
                        surprisal_by_char, training_text)
from lm.app.playground import default_prompt
from lm.errors import LMError
from lm.store.registry import list_models
from ui.loaders import available_models, cached_model, get_model
from ui.state import init_from_query, write_query
from ui.widgets import SAMPLING_KEYS, gltr_html, gltr_legend, sampling_sidebar

SAMPLE_TEXTS = {
    "shakespeare": "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer",
    "names": "emma\noliver\nzqxjw\nsophia",
    "python": "for i in range(10):\n    print(i * i)\n",
}


@st.cache_resource(show_spinner="Reading the training text…", max_entries=8)
def cached_training_text(source: tuple) -> CorpusIndex | None:
    try:
        return CorpusIndex(training_text(*source))
    except LMError:
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def cached_memorisation(text: str, source: tuple):
    span = memorisation(text, cached_training_text(source))
    return None if span is None else (span.length, span.text)


@st.cache_data(show_spinner="Scoring…", max_entries=64)
def cached_surprisal(name: str, text: str) -> list[dict]:
    return [{"start": c.start, "end": c.end, "piece": c.piece, "bits": c.bits}
            for c in surprisal_by_char(cached_model(name), text)]


def memorised(loaded, text: str):
    source = corpus_source(loaded.meta)
    return cached_memorisation(text, source) if source else None


def column(slot, loaded, prompt: str, settings, result):
    """One model's column: the text (streamed when `result` is None), speed, diversity, memorisation."""
    with slot:
        st.markdown(f"#### {loaded.name}")
        st.caption(f"{loaded.meta.get('model', {}).get('cell') or loaded.family} · {loaded.tokenizer.kind} · "
                   f"{loaded.meta.get('parameters', 0):,} parameters")
        box = st.empty()
        if result is None:
            last = [0.0]

            def draw(_text, token):
                now = time.perf_counter()
                if now - last[0] > 0.25 or token.finished:
                    box.markdown(gltr_html(prompt, tokens_so_far), unsafe_allow_html=True)
                    last[0] = now

            tokens_so_far = []
            try:
                result = generate_column(loaded, prompt, settings,
                                         on_token=lambda text, tok: (tokens_so_far.append(tok), draw(text, tok)))
            except LMError as exc:
                st.error(str(exc))
                return None
        box.markdown(gltr_html(prompt, result.tokens), unsafe_allow_html=True)
        if result.replaced:
            st.caption("Unknown to this model: " + " ".join(repr(c) for c in result.replaced))
        a, b, c = st.columns(3)
        a.metric("Tokens/s", f"{result.tokens_per_second:,.0f}")
        b.metric("Distinct-1", f"{result.distinct_1:.2f}", help="Distinct words / all words")
        c.metric("Distinct-2", f"{result.distinct_2:.2f}", help="Distinct word pairs / all word pairs")
        span = memorised(loaded, result.text)
        if span is None:
            st.caption("Memorisation: training text not available")
        else:
            length, copied = span
            st.progress(min(1.0, length / 60), text=f"Longest span copied from the training text: {length} chars")
            if length >= 8:
                st.caption("“" + copied.replace("\n", " ↵ ")[:120] + "”")
    return result


def side_by_side(names: list[str], settings, stored: dict | None) -> None:
    """The model columns (generated now, or redrawn from `stored`), then the cross-scoring heatmap."""
    loaded = [get_model(n) for n in names]
    if any(m is None for m in loaded):
        return
    slots = st.columns(len(names), gap="medium", border=True)
    results = {}
    for slot, model in zip(slots, loaded):
        result = column(slot, model, st.session_state["prompt"], settings,
                        stored["results"].get(model.name) if stored else None)
        if result is not None:
            results[model.name] = result
    done = [m for m in loaded if m.name in results]
    matrix = stored["matrix"] if stored else None
    if matrix is None and len(done) >= 2:
        matrix = cross_score(done, [results[m.name].text for m in done])
    st.session_state["cmp_result"] = {"key": (tuple(names), st.session_state["prompt"], settings),
                                      "results": results, "matrix": matrix}
    gltr_legend()
    if matrix is not None:
        st.subheader("Who is surprised by whom?")
        st.caption("Bits per character of each model's text (rows) under every model (columns). The diagonal "
                   "is a model reading its own writing; low numbers elsewhere mean the models agree.")
        st.plotly_chart(viz.cross_score_heatmap([m.name for m in done], matrix), key="cmp_heatmap", width="stretch")


def main() -> None:
    st.title("Compare models")
    infos = {m.name: m for m in available_models()}
    if len(infos) < 2:
        st.info("Comparing needs at least two models — train one on the Train page.")
        return
    lineup = default_lineup(list_models())
    init_from_query({"models": lineup}, allowed={"models": list(infos)})
    corpus = infos[st.session_state["models"][0]].corpus if st.session_state["models"] else "shakespeare"
    init_from_query({"prompt": default_prompt(corpus), "cmp_text": SAMPLE_TEXTS.get(corpus, SAMPLE_TEXTS["shakespeare"])})
    st.sidebar.multiselect("Models (2–4)", list(infos), key="models", max_selections=4)
    settings = sampling_sidebar(show_samples=False)
    st.caption("Same prompt, same knobs, same seed — different models. Which one writes best? Which one "
               "just copies its training text?")
    st.text_area("Prompt", key="prompt", height=90, placeholder="Empty: start from a new line")
    clicked = st.button("Compare", key="compare", type="primary")
    write_query(["models", "prompt", "cmp_text", *[k for k in SAMPLING_KEYS if k != "samples"]])
    names = list(st.session_state["models"])
    if not 2 <= len(names) <= 4:
        st.warning("Pick 2 to 4 models in the sidebar.")
        return
    if settings is None:
        return
    key = (tuple(names), st.session_state["prompt"], settings)
    stored = st.session_state.get("cmp_result")
    if clicked or (stored and stored["key"] == key):
        side_by_side(names, settings, None if clicked else stored)
    else:
        st.info("Press **Compare** to run every model on the prompt.")
    st.subheader("Surprisal along your text")
    st.text_area("Text to score", key="cmp_text", height=80)
    text = st.session_state["cmp_text"]
    if text.strip():
        try:
            shown = text[:400]
            surprisal = {name: cached_surprisal(name, shown) for name in names}
            st.plotly_chart(viz.surprisal_figure(shown, surprisal), key="cmp_surprisal", width="stretch")
        except LMError as exc:
            st.error(str(exc))
        if len(text) > 400:
            st.caption("Only the first 400 characters are plotted.")


main()
