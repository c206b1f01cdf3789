"""Memory: the gates, cell state and hidden state of an RNN / GRU / LSTM, step by step over a text you type.

Thin page: `lm.inspect` picks a first text the model can read, runs the model's trace (cached per model and
text, so moving a slider only re-slices it), finds units that follow simple text features, and measures gate
saturation; `lm.viz` draws everything.
"""

import streamlit as st

from lm.models import families_for_page
from lm import viz
from lm.inspect import FEATURES, MAX_TEXT_CHARS, SIGMOID_STATES, compare_cells, feature_units, gate_saturation
from ui.i18n import N_, _, language, option_labels
from ui.loaders import available_models, get_model, inspection
from ui.state import init_from_query, write_query
from ui.texts import keep_valid, model_text_inspection, pick_model
from ui.widgets import clamp_state

TEXTS = {  # a first text per corpus with line ends, capitals, speaker lines (and quotes where the corpus has them)
    "shakespeare": "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is "
                   "the sun.\nArise, fair sun, and kill the envious moon.\n\nJULIET:\nAy me!\n\nROMEO:\n"
                   "She speaks: O, speak again, bright angel!",
    "names": "emma\nolivia\nava\nisabella\nsophia\ncharlotte\nmia\namelia\nharper\nevelyn\nabigail\n",
    "python": 'def greet(name):\n    """Say hello."""\n    message = "Hello, " + name + "!"\n'
              '    print(message)\n    return len(message)\n',
}


@st.cache_resource(max_entries=64, show_spinner=False)
def matches(model_name: str, text: str, state: str, layer: int):
    return feature_units(inspection(model_name, text), state, layer, top=3)


@st.cache_resource(max_entries=32, show_spinner=False)
def saturation(model_name: str, text: str, layer: int, lang: str):
    """The gate saturation figure; `lang` (the session's language, that of its titles) is part of the key."""
    states = inspection(model_name, text).trace.states
    return viz.saturation_figure({n: gate_saturation(v[layer]) for n, v in states.items() if n in SIGMOID_STATES},
                                 title=None)


def jump_label(match) -> str:
    return _("{feature}: unit {unit} (r = {r:+.2f})").format(feature=_(match.feature), unit=match.unit, r=match.r)


def jump_to_unit(found) -> None:
    """Selecting a feature match moves the unit widget to that unit (runs before the rerun)."""
    units = {jump_label(m): m.unit for m in found}
    choice = st.session_state.get("rnn_jump")
    if choice in units:  # anything else (a crafted message) is ignored
        st.session_state["rnn_unit"] = units[choice]
    st.session_state["rnn_jump"] = None  # an action menu: ready for the next jump


@st.fragment
def unit_view(name: str, text: str, layer: int, state: str, units: int, found) -> None:
    """One unit on the text: a fragment, so sliding through the units re-runs only this part (the big
    heatmap above is not redrawn)."""
    ins = inspection(name, text)
    st.slider(_("Unit"), 0, units - 1, key="rnn_unit", help=_("Slide through the units (the rows of the heatmap)."))
    write_query(["rnn_unit"])
    unit = st.session_state["rnn_unit"]
    values = ins.trace.states[state][layer][:, unit]  # [T]
    st.subheader(_("Unit {unit} on the text").format(unit=unit))
    follows = [m for m in found if m.unit == unit]
    if follows:
        best = max(follows, key=lambda m: abs(m.r))
        st.caption(_("On this text, unit {unit} follows the feature \"{feature}\" (correlation r = {r:+.2f}): "
                     "{meaning}.").format(unit=unit, feature=_(best.feature), r=best.r,
                                          meaning=_(FEATURES[best.feature])))
    st.markdown(viz.unit_text_html(ins.pieces, values, state, unit), unsafe_allow_html=True)
    st.caption(_("Red = positive, blue = negative (gates: orange = open). Hover a token for the exact value."))
    st.plotly_chart(viz.unit_line(values, ins.tokens, unit, state), key="rnn_unit_line", width="stretch", theme=None)


CELL_NAMES = {"rnn": N_("Elman RNN"), "gru": N_("GRU"), "lstm": N_("LSTM")}


@st.cache_resource(max_entries=16, show_spinner=False)
def cells_on(names: tuple[str, ...], held_out: tuple, text: str):
    loaded = [get_model(n) for n in names]
    return compare_cells([m for m in loaded if m is not None],
                         text, [v for m, v in zip(loaded, held_out) if m is not None])


def three_cells(info, models, text: str) -> None:
    """Every recurrent model of this corpus and tokenizer on this text: the Elman RNN, GRU and LSTM lesson."""
    peers = [m for m in models if m.corpus == info.corpus and m.tokenizer == info.tokenizer]
    if len({m.variant for m in peers}) < 2:
        return
    with st.expander(_("Elman RNN, GRU and LSTM side by side on this text"), expanded=False):
        rows = cells_on(tuple(m.name for m in peers), tuple(m.valid_bits_per_char for m in peers), text)
        st.dataframe([{_("model"): r.name, _("cell"): _(CELL_NAMES.get(r.cell, r.cell)),
                       _("parameters"): f"{r.parameters:,}", _("what it carries"): ", ".join(
                           _(viz.STATE_LABELS.get(s, s)) for s in r.states),
                       _("bits/char on this text"): round(r.bits_per_char, 3),
                       _("held-out bits/char"): None if r.valid_bits_per_char is None else
                       round(r.valid_bits_per_char, 3)} for r in rows], key="rnn_cells", hide_index=True,
                     width="stretch")
        st.caption(_("An Elman RNN carries one vector and squashes it at every step; a GRU adds gates that choose "
                     "what to keep; an LSTM adds a separate cell state that its forget gate can keep for long. "
                     "Pick each in the model menu above to see its gates. Their training budgets differ: see "
                     "docs/models.md."))


def main() -> None:
    st.title(_("Memory inside a recurrent network"))
    models = available_models(families=families_for_page("rnn"))
    info = pick_model(models, "rnn_model", ("rnn",),
                      empty=_("No RNN, GRU or LSTM models yet — train one on the Train page."))
    if info is None:
        return
    name = info.name
    init_from_query({"rnn_layer": 0})
    found = model_text_inspection(
        info, "rnn_text", TEXTS, _("A recurrent network reads one token at a time and carries a vector of numbers "
                                   "(its memory) to the next step. Each row below is one unit of that memory; each "
                                   "column one step of the text."), MAX_TEXT_CHARS)
    if found is None:
        return
    text, ins = found
    states = ins.trace.states  # name -> [layers, T, units]
    names = list(states)
    layers, _steps, units = states[names[0]].shape
    clamp_state({"rnn_layer": (0, layers - 1)})
    keep_valid("rnn_layer", range(layers), 0)  # not a number at all: a crafted message can send any string
    init_from_query({"rnn_state": "cell" if "cell" in states else "hidden"}, allowed={"rnn_state": names})
    keep_valid("rnn_state", names, "cell" if "cell" in states else "hidden")
    found = matches(name, text, st.session_state["rnn_state"], st.session_state["rnn_layer"])
    init_from_query({"rnn_unit": max(found, key=lambda m: abs(m.r)).unit if found else 0})
    if not isinstance(st.session_state["rnn_unit"], int):
        st.session_state["rnn_unit"] = 0
    clamp_state({"rnn_unit": (0, units - 1)})
    cols = st.columns([1, 2, 4])
    cols[0].selectbox(_("Layer"), range(layers), key="rnn_layer")
    cols[1].selectbox(_("Show"), names, key="rnn_state",
                      format_func=option_labels(names, lambda n: _(viz.STATE_LABELS.get(n, n))))
    cols[2].selectbox(_("Jump to a unit that follows…"), [jump_label(m) for m in found],
                      index=None, key="rnn_jump", on_change=jump_to_unit, args=(found,),
                      placeholder=_("pick a text feature"),
                      help=_("Units whose value correlates best with simple features of this text."))
    write_query(["rnn_model", "rnn_text", "rnn_layer", "rnn_state"])
    layer, state = st.session_state["rnn_layer"], st.session_state["rnn_state"]
    st.plotly_chart(viz.state_heatmap(states[state][layer], ins.tokens, state,
                                      title=_("{state}, layer {layer}: every unit over time").format(
                                          state=_(viz.STATE_LABELS.get(state, state)), layer=layer)),
                    key="rnn_heatmap", width="stretch", theme=None)
    unit_view(name, text, layer, state, units, found)
    with st.expander(_("Units that best follow simple text features"), expanded=False):
        st.dataframe([{_("feature"): _(m.feature), _("unit"): m.unit, _("correlation r"): round(m.r, 3)}
                      for m in found], key="rnn_matches", hide_index=True)
        st.caption(_("Correlation over this text only: type a longer or different text to test a hunch."))
    three_cells(info, models, text)
    if any(n in SIGMOID_STATES for n in names):
        st.subheader(_("Gate saturation"))
        st.caption(_("For every unit of each gate: the share of steps it spent almost fully open (> 0.9) or almost "
                     "shut (< 0.1). Units near 1 act like switches; a forget gate stuck open keeps a memory for "
                     "long."))
        st.plotly_chart(saturation(name, text, layer, language()), key="rnn_saturation", width="stretch", theme=None)


main()
