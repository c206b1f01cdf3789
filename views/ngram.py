"""Counting: how an n-gram model turns counts into next-token probabilities, and why smoothing matters.

Thin page: `lm.inspect` looks up counts, back-off paths and held-out scores (the over-fitting chart is cached
per model, it scores the held-out text at every order) and says what the chart shows; `lm.viz` draws the
charts. Context text and token pieces reach the page as text (`ui.texts`), never as Markdown.

A model read from an ARPA file (`lm.models.ngram.arpa_model`) lists probabilities and back-off weights, not
counts, and names no training text: it gets what the file supports (the n-grams listed per order and after the
context, the file's next-token distribution, the back-off path with its probability order by order) and one
line in place of the smoothing comparison and the held-out chart, which need counts and a held-out text.
"""

import numpy as np
import streamlit as st

from lm.models import families_for_page
from lm import viz
from lm.errors import LMError
from lm.inspect import (NGRAM_SCORE_CHARS, backoff_caption, backoff_table, describe_order_scores, ngram_backoff,
                        ngram_counts, ngram_order_scores, ngram_smoothing_comparison)
from lm.models.ngram.arpa_model import ArpaModel
from lm.models.ngram.model import SMOOTHINGS
from lm.store.registry import ModelInfo
from ui.i18n import _, lazy_gettext, option_labels
from ui.loaders import available_models, cached_model, get_model
from ui.state import init_from_query, write_query
from ui.texts import bound_text, first_text, follow_model, keep_valid, pick_model, plain_caption, plain_note
from ui.widgets import clamp_state, preferred_models

CONTEXTS = {"shakespeare": "JULIET:\nO Romeo, Romeo! wherefore art thou R", "names": "mar", "python": "def __in"}
MAX_CHART_ORDER = 7
MAX_CONTEXT_CHARS = 500  # the model reads at most its last order-1 tokens; the rest is never looked at
SAMPLE_CONTEXT_CHARS = 40  # a user corpus's sample context: a line's worth, ending inside a sentence


@st.cache_data(max_entries=16, show_spinner=lazy_gettext("Scoring held-out text at every order and smoothing (once "
                                                          "per model)…"))
def order_scores(model_name: str):
    loaded = cached_model(model_name)
    return ngram_order_scores(loaded, orders=range(1, MAX_CHART_ORDER + 1))


def first_model(models: list[ModelInfo]) -> str:
    """The biggest n-gram of the preferred corpus and tokenizer: the one whose order chart goes furthest, so
    the over-fitting lesson (add-k turning worse at high orders) is on screen from the first view."""
    infos = {m.name: m for m in models}
    top = infos[preferred_models(models, ("ngram",))[0]]
    alike = [m for m in models if (m.corpus, m.tokenizer, m.source) == (top.corpus, top.tokenizer, top.source)]
    return max(alike, key=lambda m: (m.parameters or 0, m.name)).name


def main() -> None:
    st.title(_("Counting: n-gram models"))
    models = available_models(families=families_for_page("ngram"))
    if models:
        init_from_query({"ng_model": first_model(models)}, allowed={"ng_model": [m.name for m in models]})
    info = pick_model(models, "ng_model", ("ngram",), empty=_("No n-gram models yet — count one on the Train page."))
    if info is None:
        return
    name = info.name
    loaded = get_model(name)
    if loaded is None:
        return
    model, tok = loaded.model, loaded.tokenizer
    note = follow_model("ng_context", name, *first_text(name, CONTEXTS, info.corpus, SAMPLE_CONTEXT_CHARS))
    arpa = isinstance(model, ArpaModel)
    own = "kneser_ney" if arpa else model.config.smoothing  # (an ARPA file's "arpa" is no choice of the menu)
    init_from_query({"ng_order": model.config.order, "ng_smoothing": own}, allowed={"ng_smoothing": SMOOTHINGS})
    keep_valid("ng_smoothing", SMOOTHINGS, own)  # a crafted message can send any string
    clamp_state({"ng_order": (1, model.max_order)})
    bound_text("ng_context", MAX_CONTEXT_CHARS, keep="end")
    st.caption(_("An n-gram model predicts the next token from the last n-1 tokens only, by counting what followed "
                 "them in the training text. Smoothing decides what to do with things it never saw."))
    cols = st.columns([3, 2, 2])
    cols[0].text_area(_("Context"), key="ng_context", height=80, max_chars=MAX_CONTEXT_CHARS)
    if model.max_order > 1:
        cols[1].slider(_("Order n"), 1, model.max_order, key="ng_order", help=_("Uses the last n-1 tokens as context."))
    if arpa:
        cols[2].caption(_("Smoothing: fixed by the ARPA file (its probabilities were smoothed when it was made)."))
    else:
        cols[2].selectbox(_("Smoothing (for the back-off path)"), SMOOTHINGS, key="ng_smoothing",
                          format_func=option_labels(SMOOTHINGS, lambda s: _(viz.SMOOTHING_LABELS.get(s, s))))
    write_query(["ng_model", "ng_context", "ng_order", "ng_smoothing"])
    order, smoothing = st.session_state["ng_order"], st.session_state["ng_smoothing"]
    ids, unknown = tok.encode_report(st.session_state["ng_context"])
    if not ids:
        st.error(_("Type a context: the model needs at least one token to look up."))
        return
    if note:
        st.caption(note)
    if unknown:
        plain_caption(_("This model never saw {tokens} in training: it reads each as its unknown token.").format(
            tokens=" ".join(unknown)))
    if arpa:
        arpa_view(loaded, ids, order)
        return
    try:
        used, counts, total = ngram_counts(model, ids, order)
        comparison = ngram_smoothing_comparison(loaded, ids, SMOOTHINGS, order=order, k=10)
    except LMError as exc:
        st.error(_(str(exc)))
        return
    shown = "".join(tok.token_strings(used)) if used else ""
    st.subheader(_("What followed the context in training") if used else _("Counts of single tokens"))
    if used:
        plain_caption(_("Context looked up ({count} tokens): {context}").format(count=len(used),
                                                                              context=viz.visible(shown, 40)))
    if order > 1 and len(used) < min(order - 1, len(ids)):
        st.caption(_("The full context of {full} tokens never occurred in training; these are the counts after its "
                     "longest seen ending ({used} tokens).").format(full=min(order - 1, len(ids)), used=len(used)))
    share = _("share")
    st.dataframe([{_("next token"): viz.visible(s, 20), _("count"): c, share: c / max(total, 1)}
                  for (_t, c), s in zip(counts, tok.token_strings([t for t, _c in counts]))],
                 key="ng_counts", hide_index=True, height=min(220, 35 * (len(counts) + 1) + 3),
                 column_config={share: st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="%.3f")})
    st.caption(_("{total:,} times in all; {shown} most frequent shown.").format(total=total, shown=len(counts)))
    st.plotly_chart(viz.smoothing_bars(comparison), key="ng_bars", width="stretch", theme=None)
    top = {i: f"{viz.visible(s, 20)}  (p = {p:.3f})" for i, s, p in comparison[smoothing]}
    st.subheader(_("The back-off path"))
    if st.session_state.get("ng_target") not in top:  # a new context or smoothing: explain its top token
        st.session_state["ng_target"] = next(iter(top))
    st.selectbox(_("Explain the probability of"), list(top), key="ng_target", format_func=top.get)
    rows, notes = ngram_backoff(model, tok, ids, st.session_state["ng_target"], order, smoothing)
    st.dataframe(backoff_table(rows, tok, lambda s: viz.visible(s, 40), smoothing), key="ng_backoff",
                 hide_index=True)
    st.caption(_("{smoothing}: one row per order, longest context first. The weight is how much probability is "
                 "handed down to the next shorter context. {meaning}").format(
        smoothing=_(viz.SMOOTHING_LABELS.get(smoothing, smoothing)), meaning=_(backoff_caption(smoothing))))
    for line in notes:
        plain_note(line)
    st.subheader(_("Longer context is not always better"))
    try:
        scores = order_scores(name)
    except LMError as exc:
        st.error(_(str(exc)))
        return
    st.plotly_chart(viz.order_chart(scores), key="ng_orders", width="stretch", theme=None)
    missing = _(" Orders above {order} were not counted for this model.").format(order=model.max_order) \
        if model.max_order < MAX_CHART_ORDER else ""
    st.caption(_("Scored on the first {chars:,} characters of held-out text the model never saw. ").format(
        chars=NGRAM_SCORE_CHARS) + describe_order_scores(scores, viz.SMOOTHING_LABELS) + missing)


def arpa_table(rows, tok) -> list[dict]:
    """The back-off path of an ARPA model (`ArpaModel.trace` rows, longest context first) as table rows."""
    yes, no = _("yes"), _("no")
    return [{_("order"): r.order,
             _("context"): viz.visible("".join(tok.token_strings(list(r.context))), 40) if r.context else _("(none)"),
             _("context listed"): yes if r.context_count > 0 or r.order == 1 else no,
             _("n-gram listed"): yes if r.target_count > 0 else no,
             _("listed continuations"): r.distinct_continuations,
             _("p at this order"): r.probability,
             _("back-off weight"): r.weight} for r in rows]


def arpa_view(loaded, ids: list[int], order: int) -> None:
    """The Counting page for a model read from an ARPA file: what the file lists, not counts."""
    model, tok = loaded.model, loaded.tokenizer
    try:
        used, words, probs = model.with_settings(order=order).listed_after(ids)
        comparison = ngram_smoothing_comparison(loaded, ids, ["arpa"], order=order, k=10)["arpa"]
    except LMError as exc:
        st.error(_(str(exc)))
        return
    st.subheader(_("What the file lists after the context") if used else _("Probabilities of single tokens"))
    if used:
        plain_caption(_("Longest listed context ({count} tokens): {context}").format(
            count=len(used), context=viz.visible("".join(tok.token_strings(used)), 40)))
    top = np.argsort(-probs, kind="stable")[:15]
    probability = _("probability")
    st.dataframe([{_("next token"): viz.visible(s, 20), probability: float(probs[i])}
                  for i, s in zip(top, tok.token_strings(words[top].tolist()))],
                 key="ng_counts", hide_index=True, height=min(220, 35 * (top.size + 1) + 3),
                 column_config={probability: st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                             format="%.3f")})
    st.caption(_("An ARPA file lists probabilities, not counts: {listed:,} tokens are listed after this context, "
                 "{shown} most likely shown.").format(listed=int(words.size), shown=int(top.size)))
    st.plotly_chart(viz.smoothing_bars({_("ARPA file"): comparison}, title=_("Next-token distribution")),
                    key="ng_bars", width="stretch", theme=None)
    choices = {i: f"{viz.visible(s, 20)}  (p = {p:.3f})" for i, s, p in comparison}
    st.subheader(_("The back-off path"))
    if st.session_state.get("ng_target") not in choices:  # a new context: explain its top token
        st.session_state["ng_target"] = next(iter(choices))
    st.selectbox(_("Explain the probability of"), list(choices), key="ng_target", format_func=choices.get)
    target = st.session_state["ng_target"]
    rows, _notes = ngram_backoff(model, tok, ids, target, order)
    st.dataframe(arpa_table(rows, tok), key="ng_backoff", hide_index=True)
    st.caption(_("One row per order, longest context first. A listed n-gram gives its probability; otherwise the "
                 "context's back-off weight (1 when the context is not listed either) multiplies the probability "
                 "of the next shorter context."))
    after = [r.distinct_continuations for r in sorted(rows, key=lambda r: r.order)]
    st.plotly_chart(viz.listed_orders_chart(model.listed_per_order(), after + [0] * (model.max_order - len(after))),
                    key="ng_sizes", width="stretch", theme=None)
    st.plotly_chart(viz.backoff_path_chart(rows, tok.token_strings([target])[0]), key="ng_path", width="stretch",
                    theme=None)
    st.subheader(_("Longer context is not always better"))
    st.info(_("Not drawn for an ARPA file: comparing smoothings and scoring held-out text at every order needs the "
              "counts and the training text, and an ARPA file holds neither."))


main()
