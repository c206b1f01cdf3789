"""Playground: prompt a model, turn the sampling knobs, watch GLTR-coloured text stream in, step token by token,
or colour any text by the ranks the model gives its tokens."""

import streamlit as st

from lm import viz
from lm.app.gltr import alternatives_at, colour_text
from lm.app.playground import (PAGE_PROMPT_CHARS, Throttle, check_request, default_prompt, knob_stages, per_second,
                               sample_text, short_number)
from lm.app.quotas import request_time_budget
from lm.errors import LMError
from lm.run.generate import collect, encode_prompt, generate, next_token_stages
from ui.i18n import _, lazy_gettext, ngettext
from ui.loaders import available_models, cached_model, get_model
from ui.state import init_from_query, write_query
from ui.widgets import (SAMPLING_KEYS, clamp_state, download_buttons, gltr_html, gltr_legend, md_literal, model_picker,
                        pick_token, pinned_index, prompts_follow, rank_bins_for, sampling_sidebar, show_error,
                        token_table)

MODES = ("step_mode", "colour_mode")  # the Playground's two other views; at most one is on


def only_one(mode: str) -> None:
    """Toggle callback: turning one mode on turns the other off."""
    if st.session_state.get(mode):
        for other in MODES:
            if other != mode:
                st.session_state[other] = False


# -- step mode ------------------------------------------------------------------------------------------
def take_step(loaded, settings) -> None:
    """Sample one token from the processed distribution and append it to the prompt (a button callback)."""
    count = st.session_state.get("pg_steps", 0)
    one = settings.replace(max_new_tokens=1, samples=1, seed=(settings.seed + count) % 2**62)
    try:
        token = next(generate(loaded.model, loaded.tokenizer, st.session_state["prompt"], one))
    except LMError as exc:
        st.session_state["pg_step_error"] = str(exc)
        return
    st.session_state["prompt"] += token.text
    st.session_state["pg_steps"] = count + 1
    st.session_state["pg_last_step"] = _("sampled '{piece}' (p = {prob:.1%}, rank {rank})").format(
        piece=viz.visible(token.piece, None), prob=token.prob, rank=token.rank)


def step_mode(loaded, prompt: str, settings) -> None:
    cols = st.columns([1, 1, 3], vertical_alignment="center")
    cols[0].button(_("Sample one token ▶"), key="pg_step", type="primary", on_click=take_step,
                   args=(loaded, settings), width="stretch")
    clamp_state({"pg_top_n": (5, 60)})  # from the URL or a crafted message: the chart stays small
    cols[1].number_input(_("Tokens shown"), 5, 60, step=5, key="pg_top_n")
    if "pg_step_error" in st.session_state:
        show_error(st.session_state.pop("pg_step_error"))
    elif "pg_last_step" in st.session_state:
        cols[2].markdown(md_literal(_("Last step: {step}").format(step=st.session_state["pg_last_step"])))
    try:
        pieces, stages = next_token_stages(loaded.model, loaded.tokenizer, prompt, settings)
    except LMError as exc:
        show_error(exc)
        return
    view = knob_stages(pieces, stages, top_n=st.session_state["pg_top_n"])
    st.caption(_("The next-token distribution after your prompt, before and after each knob (in the order they "
                 "are applied), all on one scale. Grey bars are tokens a knob cut off: they can no longer be sampled."))
    st.plotly_chart(viz.stage_figure(view, settings), key="pg_stage_chart", width="stretch")


# -- generating -----------------------------------------------------------------------------------------
def sample_box(index: int, count: int, placeholder: bool = True):
    """Where one sample is drawn: a bordered, numbered box when there are several; in it a slot to redraw while
    streaming (`placeholder`), else the place itself, for a text drawn once (no empty slot sent first)."""
    box = st
    if count > 1:
        box = st.container(border=True)
        box.caption(_("Sample {number}").format(number=index + 1))
    return box.empty() if placeholder else box


def sample_boxes(count: int, placeholder: bool = True) -> list:
    return [sample_box(i, count, placeholder) for i in range(count)]


def pinned(result: dict) -> tuple[int, int | None]:
    """(sample, token index) the user pinned, clamped to the result (the widgets come later on the page)."""
    sample = pinned_index("pg_pin_sample", len(result["tokens"]))
    return sample, pinned_index("pg_pin", len(result["tokens"][sample]))


def draw_samples(slots, result: dict) -> None:
    sample, index = pinned(result)
    for i, (slot, tokens) in enumerate(zip(slots, result["tokens"])):
        slot.markdown(gltr_html(result["prompt"], tokens, result.get("bins"), highlight=index if i == sample else None),
                      unsafe_allow_html=True)


def run_generation(loaded, prompt: str, settings, key) -> bool:
    """Stream the samples into placeholders, then keep the result in the session for later reruns.

    Redraws are throttled (`Throttle`: every 0.25 s at most, the first one 0.25 s in, so a generation faster than
    that is sent once, finished) and leave out the tooltips and all but the end of the prompt, so a long prompt or
    many samples cost the same per redraw as a short one.
    """
    slots: list = []  # made at the first redraw, or at the end: until then nothing is sent
    throttle = Throttle(wait_first=True)
    bins = rank_bins_for(loaded.tokenizer)

    def draw(token, tokens) -> None:
        if throttle.due(final=False):
            slots[:] = slots or sample_boxes(settings.samples)
            for i, slot in enumerate(slots):
                slot.markdown(gltr_html(prompt, tokens[i], bins, details=False), unsafe_allow_html=True)

    try:
        done = collect(generate(loaded.model, loaded.tokenizer, prompt, settings), settings.samples, on_token=draw,
                       time_budget=request_time_budget())
    except LMError as exc:
        show_error(exc)
        return False
    result = {"model": loaded.name, "prompt": prompt, "tokens": done.tokens, "seconds": done.seconds, "key": key,
              "bins": bins, "vocab": loaded.tokenizer.vocab_size}  # kept: the model may be gone at the next rerun
    st.session_state["pg_result"] = result
    draw_samples(slots or sample_boxes(settings.samples, placeholder=False), result)
    if done.timed_out:
        st.warning(_("Stopped after {seconds:.0f} s, this server's limit for one request (LM_REQUEST_SECONDS).").format(
            seconds=done.seconds))
    return True


def show_result(result: dict, fresh: bool, key) -> None:
    if not fresh:
        draw_samples(sample_boxes(len(result["tokens"]), placeholder=False), result)
    if result.get("key") != key:
        st.info(_("Settings changed since this text was written: press **Generate** to see what they do."),
                icon=":material/update:")
    count = sum(len(t) for t in result["tokens"])
    st.caption(md_literal(ngettext("{model}: {count:,} token in {seconds:.2f} s ({speed} tokens/s)",
                                   "{model}: {count:,} tokens in {seconds:.2f} s ({speed} tokens/s)", count).format(
        model=result["model"], count=count, seconds=result["seconds"],
        speed=short_number(per_second(count, result["seconds"])))))
    gltr_legend(result.get("bins"), result.get("vocab"), result["model"])
    with st.expander(_("One token up close: its rank and the model's top alternatives"), expanded=True):
        sample = pinned(result)[0]
        if len(result["tokens"]) > 1:
            st.number_input(_("Sample"), 1, len(result["tokens"]), key="pg_pin_sample")
        tokens = result["tokens"][sample]
        index = pick_token(len(tokens), "pg_pin")
        if index is not None:
            token = tokens[index]
            token_table(token.piece, token.rank, token.prob, token.top,
                        where=_("Token {number} of {count}, ").format(number=index + 1, count=len(tokens)))
    texts = ["".join(t.text for t in tokens) for tokens in result["tokens"]]
    download_buttons(texts, result["tokens"], key="pg_download")


def generate_button(slot) -> bool:
    """The Generate button in its place in the row (None: a mode without one); True when pressed."""
    return slot is not None and slot.button(_("Generate"), key="generate", type="primary", width=160)


@st.fragment
def generate_view(button_slot, name: str, prompt: str, settings, key) -> None:
    """The Generate button and what it wrote, as one fragment: pressing Generate (or pinning a token) reruns this
    function only, with the model, prompt and settings of the page's last full run (checked there), instead of
    the whole page (sidebar, pickers, model list, URL): on a class server the page script was a third of a
    Generate's cost. Any other widget still reruns the page, which calls this again with its new values. The
    model is passed by name, so a session left open keeps no model alive that the cache has let go."""
    clicked = generate_button(button_slot)
    if clicked:
        loaded = get_model(name)
        if loaded is None or not run_generation(loaded, prompt, settings, key):
            return
    result = st.session_state.get("pg_result")
    if result:
        show_result(result, fresh=clicked, key=key)
    else:
        st.info(_("Press **Generate** to let the model write."))


# -- colouring any text ---------------------------------------------------------------------------------
@st.cache_resource(show_spinner=lazy_gettext("Scoring the text…"), max_entries=32)
def cached_colours(name: str, text: str):
    """`colour_text` once per (model, text), shared read-only by every session."""
    return colour_text(cached_model(name), text)


@st.cache_data(show_spinner=False, max_entries=256)
def cached_alternatives(name: str, text: str, index: int) -> list:
    return alternatives_at(cached_model(name), cached_colours(name, text), index)


def colour_view(loaded, text: str) -> None:
    """GLTR on any text: every token on the colour of its rank, the rank and probability histograms, one token's
    alternatives."""
    if not text.strip():
        st.info(_("Paste a text above to see how likely the model finds each of its tokens."))
        return
    try:
        coloured = cached_colours(loaded.name, text)
    except LMError as exc:
        show_error(exc)
        return
    index = pinned_index("pg_colour_pin", len(coloured.tokens))
    st.markdown(gltr_html(coloured.head, coloured.tokens, coloured.bins, highlight=index), unsafe_allow_html=True)
    if coloured.cut:
        st.caption(_("Only the first {chars:,} characters are coloured ({cut:,} left out).").format(
            chars=len(coloured.text), cut=coloured.cut))
    gltr_legend(coloured.bins, coloured.vocab_size, loaded.name)
    st.caption(_("{tokens:,} tokens, {bpc:.2f} bits per character. A model's own writing is mostly green; a person's "
                 "text has more yellow, red and purple.").format(tokens=len(coloured.tokens),
                                                                 bpc=coloured.bits_per_char))
    ranks = [t.rank for t in coloured.tokens]
    st.plotly_chart(viz.gltr_histograms(ranks, [t.prob for t in coloured.tokens], coloured.bins),
                    key="pg_gltr_hist", width="stretch")
    with st.expander(_("One token up close: its rank and the model's top alternatives"), expanded=True):
        index = pick_token(len(coloured.tokens), "pg_colour_pin")
        if index is not None:
            token = coloured.tokens[index]
            alternatives = cached_alternatives(loaded.name, text, index)
            written = next((i for i, (*_alt, mine) in enumerate(alternatives) if mine), None)
            token_table(token.piece, token.rank, token.prob, [(p, q) for p, q, _mine in alternatives], written=written,
                        where=_("Token {number} of {count}, ").format(number=index + 1, count=len(coloured.tokens)))


def main() -> None:
    st.title(_("Playground"))
    info = model_picker(available_models(), "model")
    if info is None:
        return
    init_from_query({"prompt": default_prompt(info.corpus), "pg_text": sample_text(info.corpus),
                     "step_mode": False, "colour_mode": False, "pg_top_n": 20})
    if st.session_state["step_mode"] and st.session_state["colour_mode"]:  # both on from a link: keep one
        st.session_state["colour_mode"] = False
    prompts_follow(info.corpus, "pg_corpus", "pg_text")
    settings = sampling_sidebar()
    colouring = st.session_state["colour_mode"]
    if colouring:
        st.caption(_("Paste any text: every token is coloured by the rank the model gave it (GLTR). Pick a token "
                     "below to see what the model expected there instead."))
        st.session_state["prompt"] = st.session_state["prompt"]  # keep the prompt while its box is hidden
        st.text_area(_("Text to colour"), key="pg_text", height=130, max_chars=PAGE_PROMPT_CHARS)
    else:
        st.caption(_("Type a prompt, press **Generate**, and watch the model continue it. Colours show how likely "
                     "the model thought each token was."))
        st.session_state["pg_text"] = st.session_state["pg_text"]  # keep the text while its box is hidden
        st.text_area(_("Prompt"), key="prompt", height=110, max_chars=PAGE_PROMPT_CHARS,
                     placeholder=_("Empty: start from a new line"))
    row = st.container(horizontal=True, vertical_alignment="center", gap="medium")  # each as wide as its label
    # The Generate button's place, first in the row: `generate_view` draws it (the other modes need none).
    button_slot = row.empty() if not st.session_state["step_mode"] and not colouring else None
    row.toggle(_("Step mode"), key="step_mode", on_change=only_one, args=("step_mode",),
               help=_("See the next-token distribution before and after each knob."))
    row.toggle(_("Colour any text"), key="colour_mode", on_change=only_one, args=("colour_mode",),
               help=_("Paste a text and see the rank the model gives each of its tokens."))
    write_query(["model", "prompt", "step_mode", "colour_mode", *SAMPLING_KEYS, *(["pg_text"] if colouring else [])])
    loaded = get_model(st.session_state["model"])
    if loaded is None or settings is None:
        generate_button(button_slot)
        return
    prompt = st.session_state["pg_text" if colouring else "prompt"]
    try:
        check_request(prompt, settings.max_new_tokens, settings.samples)
        replaced = encode_prompt(loaded.tokenizer, prompt).replaced
    except LMError as exc:
        generate_button(button_slot)
        show_error(exc)
        return
    if replaced:
        st.warning(md_literal(_("{model} has never seen these characters, so it reads them as 'unknown': {chars}")
                              .format(model=loaded.name, chars=" ".join(repr(c) for c in replaced))))
    if colouring:
        colour_view(loaded, prompt)
        return
    if st.session_state["step_mode"]:
        step_mode(loaded, prompt, settings)
        return
    generate_view(button_slot, loaded.name, prompt, settings, (loaded.name, prompt, settings))


main()
