"""The Chinese interface (issue 16, item 3): every user-visible string goes through the translation function, the
catalog translates every message and is compiled, and every page renders in both languages, per session.

- an `ast` walk over views/*.py and ui/*.py: a string literal reaching a Streamlit call (its first argument, its
  label=, help=, placeholder=, text=, title=, a format_func's result, a caption helper's text) is wrapped in
  `_()` / `ngettext()`, unless it holds no letters (symbols, HTML markup) or is on the short `ALLOWED` list;
- the catalog (tools/i18n.py extracts it with Babel): every message found in the code is in the .po with a
  non-empty Chinese translation keeping the same `{placeholders}`, nothing stale, and the .mo compiled from it;
- AppTest: each page of app.py's PAGES renders in English and in Chinese (`?lang=zh`) without an exception, every
  keyed widget's label and the title change with the language, the language stays in the URL, and two sessions
  read two languages at once.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import string
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the pages import `ui` and `lm` from the repository root
    sys.path.insert(0, str(ROOT))

from app_fixtures import app_home  # noqa: E402,F401
from app_server import app_pages  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TIMEOUT = 60


def _load_tool():
    spec = importlib.util.spec_from_file_location("lm_i18n_tool", ROOT / "tools" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()

# -- every visible literal is translated --------------------------------------------------------------------
# Streamlit elements and widgets whose first argument (or label/help/...) is shown to the user.
ST_CALLS = {"title", "header", "subheader", "caption", "markdown", "write", "text", "info", "warning", "error",
            "success", "toast", "button", "download_button", "link_button", "slider", "select_slider",
            "selectbox", "multiselect", "radio", "toggle", "checkbox", "number_input", "text_input", "text_area",
            "file_uploader", "metric", "progress", "expander", "spinner", "popover", "tabs", "html",
            "form_submit_button", "dataframe", "table", "TextColumn", "NumberColumn", "ProgressColumn"}
# (st.page_link and st.Page show their label= and title=, not their first argument: a file)
HELPERS = {"show_error": None, "show_text": 1, "plain_caption": None, "plain_note": None,  # ui helpers: how many
           "label_line": None}  # leading arguments are shown (None: all)
VISIBLE_KEYWORDS = {"label", "help", "placeholder", "text", "title", "empty", "show_spinner"}
KEYWORDS_OF = {"token_table": {"where"}}  # a keyword shown by one helper only
TRANSLATORS = {"_", "ngettext", "N_", "lazy_gettext"}
PASS_THROUGH = {"md_literal", "str"}  # wrappers whose argument is what shows
ALLOWED = {"LM Playground"}  # the product's name, the same in every language
LETTERS = re.compile(r"[A-Za-z]")
TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^<>]*>", re.S)  # markup, scripts and styles are not read


def _name(func) -> str:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _template(node: ast.JoinedStr) -> str:
    return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)


def _untranslated(node) -> list[tuple[int, str]]:
    """(line, text) of the literals with words in `node` that reach the page without a translation."""
    if node is None:
        return []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        shown = TAG.sub("", node.value)
        return [(node.lineno, node.value)] if LETTERS.search(shown) and node.value not in ALLOWED else []
    if isinstance(node, ast.JoinedStr):
        shown = TAG.sub("", _template(node))
        found = [(node.lineno, _template(node))] if LETTERS.search(shown) else []
        return found + [hit for v in node.values if isinstance(v, ast.FormattedValue) for hit in _untranslated(v.value)]
    if isinstance(node, ast.Call):
        name = _name(node.func)
        if name in TRANSLATORS:
            return []
        if name in PASS_THROUGH:
            return [hit for arg in node.args for hit in _untranslated(arg)]
        if name == "format" and isinstance(node.func, ast.Attribute):  # "...".format(...): the text and its values
            return _untranslated(node.func.value) + [hit for arg in [*node.args, *(k.value for k in node.keywords)]
                                                     for hit in _untranslated(arg)]
        return []  # any other call computes what it shows (model text, numbers, names)
    if isinstance(node, ast.BinOp):
        return _untranslated(node.left) + _untranslated(node.right)
    if isinstance(node, ast.IfExp):
        return _untranslated(node.body) + _untranslated(node.orelse)
    if isinstance(node, ast.BoolOp):
        return [hit for v in node.values for hit in _untranslated(v)]
    if isinstance(node, ast.Lambda):
        return _untranslated(node.body)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [hit for v in node.elts for hit in _untranslated(v)]
    if isinstance(node, ast.Dict):  # table rows: the keys are column headers
        return [hit for v in [*node.keys, *node.values] for hit in _untranslated(v)]
    if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
        return _untranslated(node.elt)
    return []


def untranslated_in(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        shown = []
        if name in ST_CALLS and node.args:
            shown.append(node.args[0])
        if name in HELPERS:
            shown += node.args[:HELPERS[name]]
        shown += [k.value for k in node.keywords
                  if k.arg in VISIBLE_KEYWORDS | KEYWORDS_OF.get(name, set()) or k.arg == "format_func"]
        found += [hit for arg in shown for hit in _untranslated(arg)]
    return sorted(set(found))


def untranslatable_in(source: str) -> list[tuple[int, str]]:
    """Translator calls whose message is not one plain literal: Babel cannot extract an f-string or a sum."""
    bad = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _name(node.func) in TRANSLATORS and node.args:
            for arg in node.args[:2 if _name(node.func) == "ngettext" else 1]:
                if isinstance(arg, (ast.JoinedStr, ast.BinOp)):
                    bad.append((node.lineno, ast.unparse(arg)[:80]))
    return bad


def _ui_files() -> list[Path]:
    return sorted((ROOT / "views").glob("*.py")) + sorted((ROOT / "ui").glob("*.py"))


def test_every_visible_string_in_the_pages_goes_through_the_translation_function():
    bad = [f"{p.relative_to(ROOT)}:{line}: {text[:70]!r}" for p in _ui_files()
           for line, text in untranslated_in(p.read_text(encoding="utf-8"))]
    assert bad == []
    bad = [f"{p.relative_to(ROOT)}:{line}: {text}" for p in _ui_files() + [ROOT / "app.py"]
           for line, text in untranslatable_in(p.read_text(encoding="utf-8"))]
    assert bad == []


def test_nothing_rebinds_the_translation_function():
    """`layers, _, units = shape` in a function makes `_` a local number there, and `_("...")` then fails."""
    bound = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in _ui_files() + [ROOT / "app.py"]
             for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
             if isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store)]
    assert bound == []


def test_the_walk_finds_what_is_not_translated():
    """The checker itself: each of these shows English that no catalog would translate."""
    for source in ['st.caption("Only the first few")', 'cols[0].slider("Unit", 0, 3)',
                   'st.button(_("Go"), help="Press it")', 'st.caption(f"{n} tokens")',
                   'st.info("A" if x else _("B"))', 'show_error("no model")', 'st.caption(md_literal("x: " + y))',
                   'st.radio(_("L"), o, format_func=lambda v: f"{v} items")',
                   'st.dataframe([{"count": c} for c in cs])', 'st.caption(_("{a}").format(a="word"))',
                   'token_table(p, r, q, t, where=f"Token {i}, ")', 'st.html("<b>bold</b> words")']:
        assert untranslated_in(source), source
    for source in ['st.caption(_("Only the first few"))', 'st.html(f"<div style=\'{s}\'>{html.escape(t)}</div>")',
                   'st.caption(md_literal(_("Unknown: {c}").format(c=" ".join(cs))))', 'st.title("LM Playground")',
                   'st.metric(_("Tokens/s"), f"{x:.2f}")', 'st.caption(f"{a} · {b}")', 'st.caption(note)',
                   'st.html("<style>p{margin:0}</style>")', 'st.page_link("views/x.py", label=_("X"))',
                   'show_text(name, "font-weight:600")', 'delete_button("model", n, f, where="panel")']:
        assert not untranslated_in(source), source
    assert untranslatable_in('_(f"{n} tokens")') and not untranslatable_in('_("{n} tokens").format(n=n)')


# -- the catalog ---------------------------------------------------------------------------------------------
SAME_IN_CHINESE = {"Transformer"}  # the name Chinese texts use too ("Transformer 模型" no longer fit its select box)


def _chinese(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _fields(text: str) -> list[str]:
    return sorted(name for _, name, spec, _ in string.Formatter().parse(text) if name is not None)


def test_the_catalog_holds_every_message_with_a_chinese_translation():
    catalog = tool.read_catalog()
    assert catalog is not None
    found = tool.messages(tool.extract())
    have = tool.messages(catalog)
    assert sorted(map(str, set(found) - set(have))) == [], "new messages: run python tools/i18n.py, translate them"
    assert sorted(map(str, set(have) - set(found))) == [], "stale messages: run python tools/i18n.py"
    assert len(have) > 300  # the pages, the tour, the lm labels: not an empty extraction
    for msgid, msgstr in have.items():
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
        strings = msgstr if isinstance(msgstr, tuple) else (msgstr,)
        assert all(s.strip() for s in strings), f"no translation for {msgid!r}"
        assert msgid in SAME_IN_CHINESE or all(_chinese(s) for s in strings), f"not Chinese: {msgid!r} -> {msgstr!r}"
        for s in strings:  # a translation that drops or renames a placeholder would raise KeyError on the page
            assert _fields(s) == _fields(ids[0]), f"{msgid!r}: placeholders {_fields(ids[0])} -> {_fields(s)}"


def test_every_literal_message_in_the_code_is_extracted():
    """Babel does not read inside an f-string: `f"{_('model')} ..."` would show English forever."""
    extracted = {m if isinstance(m, str) else m[0] for m in tool.messages(tool.extract())}
    in_code = {(p.relative_to(ROOT), n.args[0].value) for p in _ui_files() + [ROOT / "app.py"]
               for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(n, ast.Call) and _name(n.func) in TRANSLATORS and n.args
               and isinstance(n.args[0], ast.Constant) and isinstance(n.args[0].value, str) and n.args[0].value}
    assert len(in_code) > 300
    assert sorted(f"{where}: {text!r}" for where, text in in_code if text not in extracted) == []


def test_the_mo_is_compiled_from_the_po():
    assert tool.problems() == []
    compiled = tool.mo_bytes(tool.read_catalog())
    assert compiled == tool.MO.read_bytes(), "the .mo is out of date: run python tools/i18n.py"


def test_the_extraction_finds_the_pages_titles_lm_labels_and_errors():
    found = tool.messages(tool.extract())
    for message in ("Generate", "Attention (Transformer)", "Look inside", "forget gate (f)", "Kneser-Ney",
                    "Shakespeare's plays", "the prompt could not be turned into any tokens"):
        assert message in found, message


def test_translation_is_per_language_and_leaves_other_text_alone():
    from ui import i18n

    zh, en = i18n.translations("zh"), i18n.translations("en")
    assert zh.gettext("Generate") == "生成" and en.gettext("Generate") == "Generate"
    assert zh.gettext("ROMEO: what light") == "ROMEO: what light"  # text that is no message comes back as it is
    assert zh.gettext("the context has no tokens") != "the context has no tokens"  # a fixed LMError
    assert "{model}" in zh.ngettext("{model}: {count:,} token in {seconds:.2f} s ({speed} tokens/s)",
                                    "{model}: {count:,} tokens in {seconds:.2f} s ({speed} tokens/s)", 2)
    assert str(i18n.lazy_gettext("Loading model…")) == "Loading model…"  # outside a session: English
    import builtins

    assert not hasattr(builtins, "_"), "nothing may be installed into builtins: the language is per session"


def _spinner_script():
    import sys

    import streamlit as st

    sys.path.insert(0, st.session_state["root"])
    from ui.i18n import lazy_gettext

    st.markdown(str(lazy_gettext("Loading model…")))  # what Streamlit does with a cache's spinner message


def test_a_spinner_message_is_translated_in_the_session_that_shows_it():
    shown = {}
    for lang in ("zh", "en"):
        at = AppTest.from_function(_spinner_script, default_timeout=TIMEOUT)
        at.session_state["root"], at.session_state["lang"] = str(ROOT), lang
        at.run()
        assert not at.exception, at.exception
        shown[lang] = at.markdown[0].value
    assert shown == {"zh": "正在加载模型…", "en": "Loading model…"}


# -- pages in both languages -----------------------------------------------------------------------------------
# Each page opened on a tiny model (the shipped zoo may rank first otherwise) with settings that draw its content.
QUERIES = {
    "playground": {"model": "tiny-char-ngram"},
    "compare": {"models": "tiny-char-ngram,tiny-char-lstm"},
    "attention": {"att_model": "tiny-char-transformer"},
    "rnn": {"rnn_model": "tiny-char-lstm"},
    "ngram": {"ng_model": "tiny-char-ngram"},
    "tokenizers": {"tok_models": "tiny-char-ngram,tiny-bpe-ngram", "tok_train": "false"},
    "explain": {"xp_models": "tiny-char-ngram,tiny-char-transformer"},
}
PICKER = "lang"


def open_page(file: str, url: str, lang: str | None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for key, value in {**QUERIES.get(url, {}), **({PICKER: lang} if lang else {})}.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    if url != "home":
        at.switch_page(file).run()
    assert not at.exception, f"{url} in {lang}: {at.exception}"
    return at


def labels(at: AppTest) -> dict[str, str]:
    """Keyed widgets' labels (the language picker's is in both languages on purpose)."""
    out = {}
    for kind in ("slider", "select_slider", "selectbox", "multiselect", "number_input", "text_area", "text_input",
                 "toggle", "radio", "checkbox", "button"):
        for widget in at.get(kind):
            key = getattr(widget, "key", None)
            if key and key != PICKER and getattr(widget, "label", None):
                out[key] = widget.label
    return out


@pytest.mark.parametrize("file,url", [(f, u) for f, _, u in app_pages()], ids=[u for _, _, u in app_pages()])
def test_each_page_renders_in_english_and_in_chinese(app_home, file, url):
    en, zh = open_page(file, url, None), open_page(file, url, "zh")
    assert zh.query_params[PICKER] == "zh" and en.query_params[PICKER] == "en"  # a shared link keeps its language
    en_labels, zh_labels = labels(en), labels(zh)
    assert set(en_labels) == set(zh_labels)
    same = {k: v for k, v in en_labels.items() if zh_labels[k] == v}
    assert same == {}, f"{url}: labels left in English: {same}"
    headings = [h.value for h in zh.subheader]
    assert en_labels or headings  # the page drew something to compare
    assert all(_chinese(h) for h in headings), f"{url}: headings left in English: {headings}"
    if url != "home":  # Home's title is the product's name
        assert zh.title[0].value != en.title[0].value
        assert _chinese(zh.title[0].value)


def test_the_picker_switches_the_language_and_sessions_keep_their_own(app_home):
    english = open_page("views/playground.py", "playground", None)
    chinese = open_page("views/playground.py", "playground", "zh")
    assert english.button(key="generate").label == "Generate"
    assert chinese.button(key="generate").label == "生成"
    chinese.sidebar.selectbox(key=PICKER).set_value("en").run()  # the picker: back to English, URL follows
    assert chinese.button(key="generate").label == "Generate" and chinese.query_params[PICKER] == "en"
    english.sidebar.selectbox(key=PICKER).set_value("zh").run()
    english.run()  # another rerun of the other session: each keeps its own choice
    assert english.button(key="generate").label == "生成" and english.query_params[PICKER] == "zh"
    assert chinese.button(key="generate").label == "Generate"
    english.slider(key="max_new_tokens").set_value(20).run()
    english.button(key="generate").click().run()
    assert not english.exception
    assert any("个词元" in c.value for c in english.caption)  # the result's line, translated
    assert english.slider(key="temperature").label == "温度"


def test_a_crafted_language_falls_back_to_english(app_home):
    at = open_page("views/home.py", "home", "xx")
    assert at.query_params[PICKER] == "en" and at.subheader[0].value == "The model zoo"
