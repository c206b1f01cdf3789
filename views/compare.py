"""Compare: one prompt, one set of knobs, one seed, through 2-4 models side by side, then cross-scored.

Every column writes the same number of characters (each model's token budget follows from it), so lengths,
distinct-n and speed compare like for like.
"""

import streamlit as st

from lm import viz
from lm.app.compare import (CorpusIndex, copied_words, corpus_source, cross_score, default_lineup, generate_column,
                            surprisal_by_char, token_budget, training_text)
from lm.app.playground import PAGE_PROMPT_CHARS, Throttle, check_request, default_prompt, sample_text, short_number
from lm.errors import LMError
from lm.store.registry import list_models
from ui.i18n import _, lazy_gettext, ngettext
from ui.loaders import available_models, cached_model, get_model
from ui.state import init_from_query, write_query
from ui.widgets import (SAMPLING_KEYS, gltr_html, gltr_legend, md_literal, prompts_follow, rank_bins_for,
                        sampling_sidebar, show_error, show_text)

MAX_COLUMNS = 4
MEMORISED_SCALE = 60  # word characters copied that fill the memorisation bar
# Metric values and labels at a 1280-pixel projector: smaller numbers than Streamlit's, and labels that wrap
# rather than end in "…" (the values themselves are short: `short_number`, two decimals).
METRIC_STYLE = ("<style>[data-testid='stMetricValue']{font-size:1.6rem}"
                "[data-testid='stMetricLabel'] *{white-space:normal!important;overflow:visible!important;"
                "text-overflow:clip!important}</style>")


@st.cache_resource(show_spinner=lazy_gettext("Reading the training text…"), max_entries=8)
def cached_training_text(source: tuple) -> CorpusIndex | None:
    try:
        return CorpusIndex(training_text(*source))
    except LMError:
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def cached_memorisation(text: str, source: tuple):
    found = copied_words(text, cached_training_text(source))
    return None if found is None else (found.words, found.span.length, found.span.text)


@st.cache_data(show_spinner=lazy_gettext("Scoring…"), max_entries=64)
def cached_surprisal(name: str, text: str) -> list[dict]:
    return [{"start": c.start, "end": c.end, "piece": c.piece, "bits": c.bits}
            for c in surprisal_by_char(cached_model(name), text)]


def memorised(loaded, text: str):
    source = corpus_source(loaded.meta)
    return cached_memorisation(text, source) if source else None


def valid_lineup(names, known) -> list[str]:
    """The models to compare from a URL or a widget message: known names only, each once, at most MAX_COLUMNS."""
    out = []
    for name in names if isinstance(names, (list, tuple)) else []:
        if isinstance(name, str) and name in known and name not in out:
            out.append(name)
    return out[:MAX_COLUMNS]


def metrics_row(result, columns: int) -> None:
    """Speed and diversity of one column, in rows narrow enough for the number of columns on the page."""
    per_row = 3 if columns <= 2 else 2 if columns == 3 else 1
    items = [(_("Tokens/s"), short_number(result.tokens_per_second),
              _("{tokens} tokens for these {chars} characters; '–' when too fast to time").format(
                  tokens=len(result.tokens), chars=len(result.text))),
             (_("Distinct-1"), f"{result.distinct_1:.2f}", _("Distinct words / all words")),
             (_("Distinct-2"), f"{result.distinct_2:.2f}", _("Distinct word pairs / all word pairs"))]
    for start in range(0, len(items), per_row):
        for cell, (label, value, help_text) in zip(st.columns(per_row), items[start:start + per_row]):
            cell.metric(label, value, help=help_text)


def memorisation_meter(loaded, text: str) -> None:
    found = memorised(loaded, text)
    if found is None:
        st.caption(_("Memorisation: training text not available"))
        return
    words, length, copied = found
    st.progress(min(1.0, words / MEMORISED_SCALE),
                text=_("Longest span copied from the training text: {words} characters of words").format(words=words))
    if length > words:
        other = length - words
        st.caption(ngettext("Speaker names, headings, entrances and exits, punctuation and line breaks in it "
                            "({other} character) do not count.",
                            "Speaker names, headings, entrances and exits, punctuation and line breaks in it "
                            "({other} characters) do not count.", other).format(other=other))
    if words >= 8:
        show_text("“" + copied[:160] + ("…" if len(copied) > 160 else "") + "”")


def column(slot, loaded, prompt: str, settings, chars: int, result, columns: int, legend: bool):
    """One model's column: the text (streamed when `result` is None), speed, diversity, memorisation."""
    with slot:
        show_text(loaded.name, "font-weight:600;font-size:1.15rem;overflow-wrap:anywhere")
        show_text(_("{kind} · {tokenizer} · {parameters:,} parameters").format(
            kind=loaded.meta.get("model", {}).get("cell") or loaded.family, tokenizer=loaded.tokenizer.kind,
            parameters=loaded.meta.get("parameters", 0)))
        bins = rank_bins_for(loaded.tokenizer)
        box = st.empty()
        if result is None:
            throttle = Throttle()
            tokens_so_far = []

            def draw(_text, token):
                tokens_so_far.append(token)
                if throttle.due(final=False):
                    box.markdown(gltr_html(prompt, tokens_so_far, bins, details=False), unsafe_allow_html=True)

            try:
                result = generate_column(loaded, prompt, settings, on_token=draw, chars=chars)
            except LMError as exc:
                show_error(exc)
                return None
        box.markdown(gltr_html(prompt, result.tokens, bins), unsafe_allow_html=True)
        if legend:
            gltr_legend(bins, loaded.tokenizer.vocab_size, loaded.name)
        if result.replaced:
            st.caption(md_literal(_("Unknown to this model: {chars}").format(
                chars=" ".join(repr(c) for c in result.replaced))))
        st.caption(_("{chars:,} characters in {tokens:,} tokens").format(chars=len(result.text),
                                                                          tokens=len(result.tokens)))
        metrics_row(result, columns)
        memorisation_meter(loaded, result.text)
    return result


def side_by_side(names: list[str], settings, chars: int, stored: dict | None) -> None:
    """The model columns (generated now, or redrawn from `stored`), then the cross-scoring heatmap."""
    loaded = [get_model(n) for n in names]
    if any(m is None for m in loaded):
        return
    st.html(METRIC_STYLE)
    bins = [rank_bins_for(m.tokenizer) for m in loaded]
    shared_bins = all(b == bins[0] for b in bins)  # one legend for all, or one per column
    slots = st.columns(len(names), gap="small", border=True)
    results = {}
    for slot, model in zip(slots, loaded):
        result = column(slot, model, st.session_state["prompt"], settings, chars,
                        stored["results"].get(model.name) if stored else None, len(names), not shared_bins)
        if result is not None:
            results[model.name] = result
    done = [m for m in loaded if m.name in results]
    matrix = stored["matrix"] if stored else None
    if matrix is None and len(done) >= 2:
        matrix = cross_score(done, [results[m.name].text for m in done])
    st.session_state["cmp_result"] = {"key": (tuple(names), st.session_state["prompt"], settings),
                                      "results": results, "matrix": matrix}
    if shared_bins:
        vocabs = {m.tokenizer.vocab_size for m in loaded}
        gltr_legend(bins[0], vocabs.pop() if len(vocabs) == 1 else None)
    if matrix is not None:
        st.subheader(_("Who is surprised by whom?"))
        st.caption(_("Bits per character of each model's text (rows) under every model (columns). The diagonal "
                     "is a model reading its own writing; low numbers elsewhere mean the models agree."))
        st.plotly_chart(viz.cross_score_heatmap([m.name for m in done], matrix), key="cmp_heatmap", width="stretch")


def main() -> None:
    st.title(_("Compare models"))
    infos = {m.name: m for m in available_models()}
    if len(infos) < 2:
        st.info(_("Comparing needs at least two models — train one on the Train page."))
        return
    lineup = default_lineup(list_models())
    init_from_query({"models": lineup}, allowed={"models": list(infos)})
    st.session_state["models"] = valid_lineup(st.session_state["models"], infos)  # a long URL, a crafted message
    corpus = infos[st.session_state["models"][0]].corpus if st.session_state["models"] else "shakespeare"
    init_from_query({"prompt": default_prompt(corpus), "cmp_text": sample_text(corpus)})
    prompts_follow(corpus, "cmp_corpus", "cmp_text")  # the first model's corpus
    st.sidebar.multiselect(_("Models (2–{most})").format(most=MAX_COLUMNS), list(infos), key="models",
                           max_selections=MAX_COLUMNS)
    settings = sampling_sidebar(show_samples=False, characters=True)
    st.caption(_("Same prompt, same knobs, same seed, same number of characters — different models. Which one "
                 "writes best? Which one just copies its training text?"))
    st.text_area(_("Prompt"), key="prompt", height=90, max_chars=PAGE_PROMPT_CHARS,
                 placeholder=_("Empty: start from a new line"))
    clicked = st.button(_("Compare"), key="compare", type="primary")
    write_query(["models", "prompt", "cmp_text", "chars",
                 *[k for k in SAMPLING_KEYS if k not in ("samples", "max_new_tokens")]])
    names = list(st.session_state["models"])
    if not 2 <= len(names) <= MAX_COLUMNS:
        st.warning(_("Pick 2 to {most} models in the sidebar.").format(most=MAX_COLUMNS))
        return
    if settings is None:
        return
    chars = settings.max_new_tokens  # in characters here (see sampling_sidebar)
    try:
        check_request(st.session_state["prompt"])  # its length, before anything runs
        if clicked:  # what the click costs (the models load only now)
            budgets = [token_budget(cached_model(n).tokenizer, chars) for n in names]
            check_request(st.session_state["prompt"], max(budgets), 1, len(names))
    except LMError as exc:
        show_error(exc)
        return
    key = (tuple(names), st.session_state["prompt"], settings)
    stored = st.session_state.get("cmp_result")
    if clicked or (stored and stored["key"] == key):
        side_by_side(names, settings, chars, None if clicked else stored)
    elif stored:
        st.info(_("Settings changed since the last comparison: press **Compare** to run the models again."))
    else:
        st.info(_("Press **Compare** to run every model on the prompt."))
    st.subheader(_("Surprisal along your text"))
    st.text_area(_("Text to score"), key="cmp_text", height=80, max_chars=PAGE_PROMPT_CHARS)
    text = st.session_state["cmp_text"]
    if text.strip():
        try:
            shown = text[:400]
            surprisal = {name: cached_surprisal(name, shown) for name in names}
            st.plotly_chart(viz.surprisal_figure(shown, surprisal), key="cmp_surprisal", width="stretch")
        except LMError as exc:
            show_error(exc)
        if len(text) > 400:
            st.caption(_("Only the first 400 characters are plotted."))


main()
