"""Playground: prompt a model, turn the sampling knobs, watch GLTR-coloured text stream in, or step token by token."""

import time

import streamlit as st

from lm import viz
from lm.app.playground import default_prompt, knob_stages
from lm.errors import LMError
from lm.run.generate import collect, encode_prompt, generate, next_token_stages
from ui.loaders import available_models, get_model
from ui.state import init_from_query, write_query
from ui.widgets import SAMPLING_KEYS, download_buttons, gltr_html, gltr_legend, model_picker, sampling_sidebar


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
    st.session_state["pg_last_step"] = (f"sampled '{viz.visible(token.piece, None)}' (p = {token.prob:.1%}, "
                                        f"rank {token.rank})")


def step_mode(loaded, prompt: str, settings) -> None:
    cols = st.columns([1, 1, 3], vertical_alignment="center")
    cols[0].button("Sample one token ▶", key="pg_step", type="primary", on_click=take_step,
                   args=(loaded, settings), width="stretch")
    cols[1].number_input("Tokens shown", 5, 60, step=5, key="pg_top_n")
    if "pg_step_error" in st.session_state:
        st.error(st.session_state.pop("pg_step_error"))
    elif "pg_last_step" in st.session_state:
        cols[2].markdown(f"Last step: {st.session_state['pg_last_step']}")
    try:
        pieces, stages = next_token_stages(loaded.model, loaded.tokenizer, prompt, settings)
    except LMError as exc:
        st.error(str(exc))
        return
    view = knob_stages(pieces, stages, top_n=st.session_state["pg_top_n"])
    st.caption("The next-token distribution after your prompt, before and after each knob (in the order they "
               "are applied). Grey bars are tokens a knob cut off: they can no longer be sampled.")
    st.plotly_chart(viz.stage_figure(view, settings), key="pg_stage_chart", width="stretch")


def sample_box(index: int, count: int):
    """Where one sample is drawn: a bordered, numbered box when there are several."""
    if count == 1:
        return st.empty()
    box = st.container(border=True)
    box.caption(f"Sample {index + 1}")
    return box.empty()


def run_generation(loaded, prompt: str, settings) -> bool:
    """Stream the samples into placeholders, then keep the result in the session for later reruns."""
    slots = [sample_box(i, settings.samples) for i in range(settings.samples)]
    last_draw = [time.perf_counter()]

    def draw(token, tokens) -> None:
        now = time.perf_counter()
        if now - last_draw[0] > 0.08 or token.finished:
            for i, slot in enumerate(slots):
                slot.markdown(gltr_html(prompt, tokens[i]), unsafe_allow_html=True)
            last_draw[0] = now

    try:
        done = collect(generate(loaded.model, loaded.tokenizer, prompt, settings), settings.samples, on_token=draw)
    except LMError as exc:
        st.error(str(exc))
        return False
    tokens, seconds = done.tokens, done.seconds
    for i, slot in enumerate(slots):
        slot.markdown(gltr_html(prompt, tokens[i]), unsafe_allow_html=True)
    st.session_state["pg_result"] = {"model": loaded.name, "prompt": prompt, "tokens": tokens, "seconds": seconds}
    return True


def show_result(result: dict, fresh: bool) -> None:
    if not fresh:
        for i, tokens in enumerate(result["tokens"]):
            sample_box(i, len(result["tokens"])).markdown(gltr_html(result["prompt"], tokens), unsafe_allow_html=True)
    count = sum(len(t) for t in result["tokens"])
    st.caption(f"{result['model']}: {count} tokens in {result['seconds']:.2f} s "
               f"({count / max(result['seconds'], 1e-9):,.0f} tokens/s)")
    gltr_legend()
    texts = ["".join(t.text for t in tokens) for tokens in result["tokens"]]
    download_buttons(texts, result["tokens"], key="pg_download")


def main() -> None:
    st.title("Playground")
    info = model_picker(available_models(), "model")
    if info is None:
        return
    init_from_query({"prompt": default_prompt(info.corpus), "step_mode": False, "pg_top_n": 20})
    settings = sampling_sidebar()
    st.caption("Type a prompt, press **Generate**, and watch the model continue it. Colours show how likely "
               "the model thought each token was.")
    st.text_area("Prompt", key="prompt", height=110, placeholder="Empty: start from a new line")
    cols = st.columns([1, 1, 4], vertical_alignment="center")
    clicked = False
    if not st.session_state["step_mode"]:  # in step mode the model writes one token per click instead
        clicked = cols[0].button("Generate", key="generate", type="primary", width="stretch")
    cols[1].toggle("Step mode", key="step_mode", help="See the next-token distribution before and after each knob.")
    write_query(["model", "prompt", "step_mode", *SAMPLING_KEYS])
    loaded = get_model(st.session_state["model"])
    if loaded is None or settings is None:
        return
    prompt = st.session_state["prompt"]
    try:
        replaced = encode_prompt(loaded.tokenizer, prompt).replaced
    except LMError as exc:
        st.error(str(exc))
        return
    if replaced:
        st.warning(f"{loaded.name} has never seen these characters, so it reads them as 'unknown': "
                   + " ".join(repr(c) for c in replaced))
    if st.session_state["step_mode"]:
        step_mode(loaded, prompt, settings)
        return
    if clicked and not run_generation(loaded, prompt, settings):
        return
    result = st.session_state.get("pg_result")
    if result:
        show_result(result, fresh=clicked)
    else:
        st.info("Press **Generate** to let the model write.")


main()
