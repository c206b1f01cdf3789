"""The Playground and Compare pages as a class sees them first (issue 12) and as a shared server must bound them
(issue 18): GLTR bins that fit the vocabulary, colouring any text, Compare by characters, a memorisation
meter that ignores speaker boilerplate, stale output, prompts that follow the model, step-mode titles,
finite speeds, server-side limits, and user text that never renders as Markdown.

The lm-level checks run on the tiny checkpoints of `app_fixtures` (names corpus) and on hand-made inputs; the
page checks are AppTest runs through app.py's navigation.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app_fixtures import TINY_MODELS, app_home  # noqa: E402,F401
from test_app_pages import figures, page  # noqa: E402  (app.py switched to a page, as that suite runs it)
from lm.app.compare import (ColumnResult, CorpusIndex, copied_words, generate_column, memorisation,  # noqa: E402
                            token_budget, word_mask)
from lm.app.gltr import alternatives_at, colour_text  # noqa: E402
from lm.app.playground import (MAX_REQUEST_TOKENS, PAGE_PROMPT_CHARS, StageView, Throttle, check_request,  # noqa: E402
                               follow_corpus, follow_sample_text, knob_stages, per_second, sample_text, short_number)
from lm.errors import LMError  # noqa: E402
from lm.run.sampling import SamplingSettings  # noqa: E402
from lm.store.registry import load_model  # noqa: E402
from lm.viz.tokens import GLTR_COLOURS, gltr_html, rank_bin, rank_bins  # noqa: E402

PAYLOADS = ["![t](http://x/y.png)", "[link](http://x)", ":red[x]", "$x$", "<b>x</b>"]


# -- GLTR bins ----------------------------------------------------------------------------------------------
def labels(bins) -> list[str]:
    return [b.label for b in bins]


def test_rank_bins_are_scaled_to_the_vocabulary():
    assert labels(rank_bins(81)) == ["rank 1", "rank 2–3", "rank 4–10", "rank 11+"]  # a character model
    assert labels(rank_bins(28)) == labels(rank_bins(81))
    assert labels(rank_bins(2048)) == ["rank 1–10", "rank 11–100", "rank 101–1,000", "rank 1,001+"]  # BPE
    assert labels(rank_bins(50257)) == labels(rank_bins(2048))
    assert labels(rank_bins(1024)) == ["rank 1–3", "rank 4–30", "rank 31–300", "rank 301+"]
    for vocab in (20, 28, 81, 300, 600, 1024, 2000, 2048, 50257):
        bins = rank_bins(vocab)
        assert [b.colour for b in bins] == list(GLTR_COLOURS)
        assert all(a.high + 1 == b.low for a, b in zip(bins, bins[1:]))  # contiguous from rank 1
        assert bins[0].low == 1 and bins[-1].high is None and 2 * bins[-2].high <= vocab  # "rarer" can occur
    char = rank_bins(81)
    assert [rank_bin(r, char) for r in (1, 2, 3, 4, 10, 11, 80)] == [0, 1, 1, 2, 2, 3, 3]


def test_a_character_models_text_uses_every_colour(app_home):
    loaded = load_model("tiny-char-lstm")
    bins = rank_bins(loaded.tokenizer.vocab_size)
    column = generate_column(loaded, "", SamplingSettings(temperature=1.0, max_new_tokens=300, seed=1))
    used = {rank_bin(t.rank, bins) for t in column.tokens}
    assert used == {0, 1, 2, 3}, used
    html_text = gltr_html("", column.tokens, bins)
    assert sum(html_text.count(f"background:{c}") > 0 for c in GLTR_COLOURS) == 4


def test_gltr_html_paints_by_the_bins_it_is_given_and_frames_the_pinned_token():
    token = SimpleNamespace(text="e", rank=2, prob=0.3, top=[("a", 0.4), ("e", 0.3)])
    assert f"background:{GLTR_COLOURS[1]}" in gltr_html("", [token], rank_bins(81))  # rank 2 of 81: yellow
    assert f"background:{GLTR_COLOURS[0]}" in gltr_html("", [token], rank_bins(2048))  # rank 2 of 2048: green
    framed = gltr_html("", [token, token], rank_bins(81), highlight=1)
    assert framed.count("outline:") == 1 and framed.rindex("outline:") > framed.index("</span><span")
    assert "title=" not in gltr_html("", [token], rank_bins(81), details=False)  # streaming: no tooltips


# -- colour any text ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TINY_MODELS)
def test_colour_text_works_for_every_family_and_tokenizer(name, app_home):
    loaded = load_model(name)
    text = "emma\noliver\nzqxjw\nsophia\n" * 3
    coloured = colour_text(loaded, text)
    assert coloured.head + "".join(t.text for t in coloured.tokens) == text  # every character, once
    assert sum(coloured.bin_counts) == len(coloured.tokens) and coloured.bins == rank_bins(loaded.tokenizer.vocab_size)
    assert all(t.rank >= 1 and 0 <= t.prob <= 1 for t in coloured.tokens)
    assert coloured.bin_counts[0] > 0 and coloured.bits_per_char > 0


def test_pinned_alternatives_agree_with_the_colour_beyond_the_context(app_home):
    loaded = load_model("tiny-char-transformer")  # context 32: the text needs several scoring windows
    text = "emma\noliver\nzqxjw\nsophia\nisabella\nmia\n" * 3
    coloured = colour_text(loaded, text)
    vocab = loaded.tokenizer.vocab_size
    for index in (0, 5, 40, 70, len(coloured.tokens) - 1):
        alternatives = alternatives_at(loaded, coloured, index, k=vocab)
        written = [i for i, (_, _, mine) in enumerate(alternatives) if mine]
        assert len(written) == 1
        assert written[0] + 1 == coloured.tokens[index].rank  # the pinned rank is the colour's rank
        assert alternatives[written[0]][1] == pytest.approx(coloured.tokens[index].prob, rel=1e-3, abs=1e-6)


# -- compare by characters ----------------------------------------------------------------------------------
def test_token_budget_follows_from_characters(app_home):
    char, bpe = load_model("tiny-char-ngram").tokenizer, load_model("tiny-bpe-ngram").tokenizer
    assert token_budget(char, 300) == 300 and token_budget(bpe, 300) == 1200 and token_budget(bpe, 10**6) == 5000


def test_every_column_writes_the_same_number_of_characters(app_home):
    settings = SamplingSettings(max_new_tokens=7, seed=4)  # the token budget is replaced by the characters'
    columns = [generate_column(load_model(name), "em", settings, chars=150)
               for name in ("tiny-char-ngram", "tiny-bpe-ngram", "tiny-char-transformer")]
    assert [len(c.text) for c in columns] == [150, 150, 150]
    assert [len(c.tokens) for c in columns][0] == 150 and len(columns[1].tokens) < 150  # BPE: fewer tokens
    assert all(c.tokens[-1].finished and c.text == "".join(t.text for t in c.tokens) for c in columns)


def test_speeds_are_never_infinite():
    assert per_second(10, 0.0) is None and per_second(10, float("nan")) is None and per_second(10, 2.0) == 5
    assert ColumnResult("m", "ab", [], 0.0, []).tokens_per_second is None
    assert [short_number(v) for v in (None, float("inf"), 950, 9_500, 95_000, 1_250_000)] == \
        ["–", "–", "950", "9.5k", "95k", "1.2M"]


# -- memorisation meter -------------------------------------------------------------------------------------
BOILERPLATE_CORPUS = ("To be, or not to be, that is the question: whether tis nobler in the mind.\n\n"
                      "TITUS ANDRONICUS:\nThe sun is set and the day is gone, my lord, for ever again.\n\n"
                      "First Citizen:\nWe are accounted poor citizens, the patricians good.\n") * 4


def test_word_mask_leaves_out_speaker_lines_punctuation_and_breaks():
    text = "ain.\n\nTITUS ANDRONICUS:\nWe are\nExeunt\n\nSCENE III. A street.\n\nEnter ROMEO\nHear me:"
    mask = word_mask(text)
    assert "".join(c for c, keep in zip(text, mask) if keep) == "ainWe areHear me"


@pytest.mark.parametrize("indexed", [False, True])
def test_speaker_boilerplate_does_not_count_as_copying(indexed):
    corpus = CorpusIndex(BOILERPLATE_CORPUS, k=4) if indexed else BOILERPLATE_CORPUS
    boiler = "zzqx gain.\n\nTITUS ANDRONICUS:\nThqz zzqx"
    assert memorisation(boiler, corpus).length >= 20  # the plain meter counts the speaker change as copying
    found = copied_words(boiler, corpus)
    assert found.words <= 6, found
    copied = "qqz zz whether tis nobler in the mind zz"
    found = copied_words(copied, corpus)
    assert "whether tis nobler in the mind" in found.span.text and found.words >= 28
    assert copied_words("", corpus) is None and copied_words("abc", None) is None


# -- small lm pieces the pages use --------------------------------------------------------------------------
def test_prompts_follow_the_corpus_unless_the_user_wrote_them():
    assert follow_corpus("ROMEO:\n", "names") == ""
    assert follow_corpus("", "shakespeare") == "ROMEO:\n"
    assert follow_corpus("my own words", "names") == "my own words"
    assert follow_sample_text(sample_text("shakespeare"), "names") == sample_text("names")
    assert follow_sample_text("pasted", "names") == "pasted"


def test_requests_are_bounded():
    check_request("a" * PAGE_PROMPT_CHARS, 1000, 8, 1)
    with pytest.raises(LMError, match="limit on this page"):
        check_request("a" * (PAGE_PROMPT_CHARS + 1))
    with pytest.raises(LMError, match="per click"):
        check_request("a", MAX_REQUEST_TOKENS, 2, 1)


def test_throttle_bounds_the_redraws():
    now = [0.0]
    throttle = Throttle(0.25, clock=lambda: now[0])
    drawn = 0
    for step in range(10_000):  # 10,000 tokens in 2 s: at most 9 redraws, whatever the number of tokens
        now[0] = step * 2.0 / 10_000
        drawn += throttle.due(final=step == 9_999)
    assert 2 <= drawn <= 10 and throttle.draws == drawn


def test_step_mode_titles_at_temperature_zero_and_one_scale():
    import torch

    from lm import viz

    probs = torch.tensor([0.5, 0.3, 0.2])
    view = knob_stages(list("abc"), [("model", probs), ("temperature", torch.tensor([1.0, 0.0, 0.0]))], top_n=3)
    assert view.entropy_bits[1] == 0.0 and str(view.entropy_bits[1]) == "0.0"  # not -0.0
    fig = viz.stage_figure(view, SamplingSettings(temperature=0.0))
    titles = [a.text for a in fig.layout.annotations]
    assert titles[1].endswith("— 1 token left, 0.00 bits of entropy") and "3 tokens left" in titles[0]
    ranges = {tuple(fig.layout[axis].range) for axis in ("yaxis", "yaxis2")}
    assert len(ranges) == 1  # one y scale for every stage
    flat = StageView([0, 1], list("ab"), ["model", "temperature"], [[0.9, 0.1], [0.6, 0.4]],
                     [[True] * 2] * 2, [2, 2], [0.47, 0.97])
    top = viz.stage_figure(flat, SamplingSettings(temperature=1.5))
    assert tuple(top.layout.yaxis2.range)[1] >= 0.9  # the flattened stage is drawn on the model's scale


# -- text shown literally -----------------------------------------------------------------------------------
def rendered(markdown: str) -> str:
    """CommonMark rendering with raw HTML allowed, as Streamlit's `unsafe_allow_html` pages have it."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def assert_shows_as_text(body: str) -> None:
    """A Markdown body that shows user text as typed: no image, link or bold; an HTML body is one HTML block
    (passed through whole, so nothing in it is read as Markdown); any other has its `:red[` and `$` escaped."""
    out = rendered(body)
    assert "<img" not in out and "<a " not in out and "<b>" not in out, body
    if body.lstrip().startswith("<"):
        assert out.strip() == body.strip(), body
    else:
        assert not re.search(r"(?<!\\)(:red\[|\$)", body), body


@pytest.mark.parametrize("payload", PAYLOADS)
def test_md_literal_and_plain_html_show_payloads_as_typed(payload):
    from lm.viz.tokens import plain_html
    from ui.widgets import md_literal

    token = SimpleNamespace(text=payload, rank=1, prob=1.0, top=[(payload, 1.0)])
    for body in (md_literal(f"error: {payload}"), plain_html(f"“{payload}”"), gltr_html(payload, [token])):
        assert_shows_as_text(body)
    text = html.unescape(re.sub(r"<[^>]+>", "", rendered(md_literal(payload))))
    assert text.strip().replace("\u2060", "") == payload  # shown exactly as typed (U+2060 is invisible)


# -- the pages ----------------------------------------------------------------------------------------------
def gltr_blocks(at) -> list[str]:
    return [m.value for m in at.markdown if "class='gltr'" in m.value]


def written_text(block: str, prompt: str) -> str:
    """The characters a GLTR block shows after the prompt (tags stripped, ↵ marks dropped, entities undone)."""
    text = html.unescape(re.sub(r"<[^>]+>", "", block.replace("<br>", ""))).replace("↵", "\n")
    return text[len(prompt):]


def all_bodies(at) -> list[str]:
    return ([m.value for m in at.markdown] + [c.value for c in at.caption] + [e.value for e in at.error]
            + [w.value for w in at.warning] + [i.value for i in at.info])


def test_compare_writes_the_same_characters_in_every_column_with_short_metrics(app_home):
    at = page("compare", {"models": "tiny-char-ngram,tiny-bpe-ngram,tiny-char-lstm,tiny-char-transformer",
                          "chars": "120", "prompt": "em"})
    assert at.slider(key="chars").value == 120
    at.button(key="compare").click().run()
    assert not at.exception and not at.error
    blocks = gltr_blocks(at)
    assert len(blocks) == 4 and [len(written_text(b, "em")) for b in blocks] == [120] * 4
    values = [m.value for m in at.metric]
    assert len(values) == 12 and all(len(v) <= 4 for v in values), values  # "9.5k", "0.87", "–": fit a column
    assert [m.label for m in at.metric].count("Tokens/s") == 4
    (legend,) = [m.value for m in at.markdown if "each token" in m.value]  # one legend: the bins agree here
    assert "rank 2–3" in legend and "rank 11+" in legend  # bins for vocabularies of 28 and 300 tokens


def test_compare_survives_five_models_in_the_url_and_crafted_values(app_home):
    names = ",".join([*TINY_MODELS, "tiny-char-ngram", "no-such-model"])
    at = page("compare", {"models": names, "cmp_text": " "})
    assert not at.exception
    assert at.multiselect(key="models").value == list(TINY_MODELS)  # known names, once each, at most four
    at.session_state["models"] = ["no-such-model", "tiny-char-ngram", "tiny-char-ngram"]
    at.run()
    assert not at.exception and any("2 to 4" in w.value for w in at.warning)


def send_crafted(at, monkeypatch, crafted: dict) -> None:
    """Rerun `at` as if the browser had sent, for each widget key, `(WidgetState field, value)`: what a hand-made
    websocket message can send, values the widget offers or not."""
    import streamlit.testing.v1.element_tree as tree
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    honest = tree.get_widget_state

    def lying(node):
        if getattr(node, "key", None) not in crafted:
            return honest(node)
        field, value = crafted[node.key]
        state = WidgetState(id=node.id)
        if isinstance(value, list):
            getattr(state, field).data[:] = value
        else:
            setattr(state, field, value)
        return state

    monkeypatch.setattr(tree, "get_widget_state", lying)
    try:
        at.run()
    finally:
        monkeypatch.setattr(tree, "get_widget_state", honest)


def test_pickers_survive_crafted_values(app_home, monkeypatch):
    at = page("playground", {"model": "tiny-char-ngram"})
    send_crafted(at, monkeypatch, {"model": ("string_value", "../../no-such-model")})
    assert not at.exception, at.exception
    assert at.session_state["model"] != "../../no-such-model"
    at = page("compare", {"models": "tiny-char-ngram,tiny-char-lstm", "cmp_text": " "})
    send_crafted(at, monkeypatch,
                 {"models": ("string_array_value", ["no-such-model", *TINY_MODELS, "tiny-char-ngram"])})
    assert not at.exception, at.exception
    assert at.session_state["models"] == list(TINY_MODELS)


def test_a_crafted_request_is_bounded_on_the_server(app_home, monkeypatch):
    at = page("playground", {"model": "tiny-char-ngram"})
    at.button(key="generate").click()
    send_crafted(at, monkeypatch, {"max_new_tokens": ("double_array_value", [5000.0]),
                                   "samples": ("double_value", 16.0), "prompt": ("string_value", "em" * 10_000)})
    assert not at.exception, at.exception
    result = at.session_state["pg_result"]
    assert len(result["prompt"]) <= PAGE_PROMPT_CHARS
    assert len(result["tokens"]) <= 8 and all(len(t) <= 1000 for t in result["tokens"])


def test_pages_refuse_prompts_over_the_page_limit(app_home):
    long = "a" * (PAGE_PROMPT_CHARS + 1)
    at = page("playground", {"model": "tiny-char-ngram", "prompt": long})
    assert any("limit on this page" in e.value for e in at.error)
    at = page("compare", {"models": "tiny-char-ngram,tiny-char-lstm", "prompt": long, "cmp_text": " "})
    assert any("limit on this page" in e.value for e in at.error)


def test_playground_never_resends_a_long_prompt(app_home):
    prompt = "emma\n" * 1800  # 9,000 characters: allowed, but the output shows only its end
    at = page("playground", {"model": "tiny-char-ngram", "prompt": prompt, "max_new_tokens": "20"})
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    (block,) = gltr_blocks(at)
    assert "earlier characters" in block and len(block) < len(prompt)  # bounded, whatever the prompt's length


def test_playground_marks_stale_output_and_the_legend_fits_the_model(app_home):
    at = page("playground", {"model": "tiny-char-lstm", "max_new_tokens": "30"})
    at.button(key="generate").click().run()
    assert not any("Settings changed" in i.value for i in at.info)
    legend = " ".join(m.value for m in at.markdown if "each token" in m.value)
    assert "rank 2–3" in legend and "28 tokens" in legend
    blocks = gltr_blocks(at)
    at.slider(key="temperature").set_value(1.5).run()
    assert any("Settings changed" in i.value for i in at.info)
    assert gltr_blocks(at) == blocks  # the old text stays, marked as such


def test_playground_pins_a_token_without_hovering(app_home):
    at = page("playground", {"model": "tiny-char-transformer", "max_new_tokens": "25", "prompt": "em"})
    at.button(key="generate").click().run()
    at.slider(key="pg_pin").set_value(7).run()
    assert not at.exception
    (block,) = gltr_blocks(at)
    framed = block[:block.index("outline:")]
    assert framed.count("<span title=") == 7  # the seventh generated token is framed
    table = at.dataframe[0].value
    assert len(table) == 5 and table["probability"].str.endswith("%").all()
    assert any("Token 7 of 25" in c.value for c in at.caption)


def test_playground_speed_caption_is_finite(app_home):
    at = page("playground", {"model": "tiny-char-ngram"})
    token = SimpleNamespace(sample=0, index=0, token_id=1, text="a", piece="a", prob=0.5, rank=1,
                            top=[("a", 0.5)], finished=True)
    at.session_state["pg_result"] = {"model": "tiny-char-ngram", "prompt": "", "tokens": [[token]],
                                     "seconds": 0.0, "key": None}
    at.run()
    assert not at.exception
    speed = [c.value for c in at.caption if "token in" in c.value]
    assert speed and "– tokens/s" in speed[0], speed


def test_prompt_follows_the_models_corpus(app_home):
    at = page("playground", {"model": "shakespeare-char-lstm"})
    assert at.text_area(key="prompt").value == "ROMEO:\n"
    at.selectbox(key="model").set_value("tiny-char-lstm").run()  # a names model: ROMEO: is unreadable there
    assert not at.exception and at.text_area(key="prompt").value == ""
    assert not at.warning
    at.text_area(key="prompt").input("ann").run()
    at.selectbox(key="model").set_value("shakespeare-char-lstm").run()
    assert at.text_area(key="prompt").value == "ann"  # what the user wrote stays


def test_step_mode_at_temperature_zero(app_home):
    at = page("playground", {"model": "tiny-char-transformer", "prompt": "ma", "step_mode": "true",
                             "temperature": "0"})
    assert not at.exception
    (fig,) = figures(at)
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any(t.endswith("1 token left, 0.00 bits of entropy") for t in titles), titles
    assert not any("-0.00" in t or "1 tokens" in t for t in titles)
    ranges = {tuple(fig["layout"][k]["range"]) for k in fig["layout"] if k.startswith("yaxis")}
    assert len(ranges) == 1


def test_samples_help_says_how_samples_are_shown(app_home):
    at = page("playground", {"model": "tiny-char-ngram"})
    help_text = at.number_input(key="samples").help
    assert "side by side" not in help_text and "one under another" in help_text


@pytest.mark.parametrize("name", ["tiny-char-ngram", "tiny-char-lstm", "tiny-char-transformer", "tiny-bpe-ngram"])
def test_colour_any_text_on_every_family(name, app_home):
    at = page("playground", {"model": name, "colour_mode": "true", "pg_text": "emma\noliver\nzqxjw\n"})
    assert not at.exception and not at.error
    (block,) = gltr_blocks(at)
    assert "background:#" in block
    (fig,) = figures(at)
    assert [t["type"] for t in fig["data"]] == ["bar", "histogram"]
    assert sum(fig["data"][0]["y"]) == len(re.findall(r"<span title=", block))  # every token counted once
    at.slider(key="pg_colour_pin").set_value(3).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 10 and (table[""] != "").sum() <= 1  # the written token is marked if it is in the top 10
    assert any("Token 3 of" in c.value for c in at.caption)


def test_step_and_colour_modes_exclude_each_other(app_home):
    at = page("playground", {"model": "tiny-char-ngram", "step_mode": "true", "colour_mode": "true"})
    assert not at.exception
    assert [at.toggle(key="step_mode").value, at.toggle(key="colour_mode").value].count(True) == 1
    at.toggle(key="colour_mode").set_value(True).run()
    assert at.toggle(key="colour_mode").value and not at.toggle(key="step_mode").value


def payload_model(home: Path) -> str:
    """A user n-gram trained on a text full of Markdown and HTML payloads, its training text beside it."""
    from lm.data.tokenizer import Tokenizer
    from lm.models.ngram.model import NgramModel
    from lm.store.checkpoint import save_checkpoint

    corpus = home / "payload.txt"
    corpus.write_text(("hello " + " ".join(PAYLOADS) + " world\n") * 120, encoding="utf-8")
    text = corpus.read_text(encoding="utf-8")
    tokenizer = Tokenizer.char(text)
    model = NgramModel.build(tokenizer.encode(text), tokenizer.vocab_size, order=6, smoothing="kneser_ney")
    save_checkpoint(home / "models" / "payload-ngram", model, tokenizer,
                    {"name": "payload-ngram", "corpus": {"name": "payload.txt"},
                     "training": {"method": "counting", "settings": {"corpus": str(corpus)}}})
    return "payload-ngram"


def test_training_text_never_renders_as_markdown(app_home, tmp_path, monkeypatch):
    shutil.copytree(app_home / "models" / "tiny-char-ngram", tmp_path / "models" / "tiny-char-ngram")
    name = payload_model(tmp_path)
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))
    at = page("compare", {"models": f"{name},tiny-char-ngram", "prompt": "hello ", "temperature": "0",
                          "chars": "100", "cmp_text": " "})
    at.button(key="compare").click().run()
    assert not at.exception
    bodies = all_bodies(at)
    excerpts = [b for b in bodies if "http://x/y.png" in b and "class='gltr'" not in b]
    assert excerpts  # the excerpt of the copied training text is shown ...
    for body in bodies:  # ... and nothing on the page turns it into an image, a link, colour, maths or bold
        assert_shows_as_text(body)
    at = page("playground", {"model": name, "colour_mode": "true", "pg_text": " ".join(PAYLOADS)})
    assert not at.exception and not at.error
    for body in all_bodies(at):
        assert_shows_as_text(body)
