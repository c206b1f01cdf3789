"""The interface's translation catalog: extract every message with Babel, merge it into the .po, compile the .mo.

    python tools/i18n.py            # extract, merge (new messages get an empty translation), compile
    python tools/i18n.py --check    # exit 1 if the .po misses a message, keeps a stale one, lacks a
                                    # translation or the .mo is older than the .po (what tests/test_i18n.py asks)

Where the messages come from (ui/i18n.py says how the app uses them, lm/i18n.py how `lm` does):
- `_()`, `ngettext()`, `N_()` and `lazy_gettext()` calls in app.py, views/, ui/ and lm/ (Babel's Python
  extractor): the pages' text and the text `lm` builds for them (chart titles, axes, legends, hover text, its
  sentences), translated by `lm.i18n` in the language of the script run that builds it;
- the section and page titles of app.py's `PAGES` (a literal list that tests read with `ast`, shown via `_()`);
- fixed texts that `lm` hands the pages (labels of model families, corpora, RNN states, smoothings and text
  features) and the messages of `LMError("...", field=value)` in the modules of
  `ERROR_MODULES` (the errors a page user can cause: `str(exc)` translates them, lm/errors.py).

One catalog, one domain (`lm_playground`) for the pages and `lm`: a message shared by both is translated once.

Adding strings (a page's, or lm's): write them as `_("... {name} ...").format(name=value)` (named placeholders,
so a translation can reorder them; never an f-string inside `_()`), then
    python tools/i18n.py            # new msgids appear in the .po with an empty msgstr
    (fill in their msgstr in locale/zh_CN/LC_MESSAGES/lm_playground.po)
    python tools/i18n.py            # compile the .mo
    python tools/i18n.py --check    # nothing missing, nothing stale, .mo up to date

Translators edit `locale/zh_CN/LC_MESSAGES/lm_playground.po` (a plain gettext catalog: any PO editor works),
then run this script again to compile the `.mo` that the app reads.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DOMAIN = "lm_playground"
LOCALE = "zh_CN"
PO = ROOT / "locale" / LOCALE / "LC_MESSAGES" / f"{DOMAIN}.po"
MO = PO.with_suffix(".mo")
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
SOURCES = ("app.py", "views", "ui", "lm")
HEADER = "# Simplified Chinese interface of LM Playground: made by tools/i18n.py, translations edited here."
# lm modules whose LMError messages reach the pages' error boxes: a message is the first argument, a literal with
# named placeholders (an f-string message cannot be translated and stays English)
ERROR_MODULES = ("lm/app/playground.py", "lm/app/uploads.py", "lm/app/quotas.py", "lm/app/model_cache.py",
                 "lm/app/explain.py", "lm/app/races.py", "lm/app/jobs.py", "lm/run/generate.py", "lm/run/metrics.py",
                 "lm/run/sampling.py", "lm/inspect/text.py", "lm/inspect/ngram.py", "lm/inspect/ablation.py",
                 "lm/inspect/attribution.py", "lm/data/tokenizer.py", "lm/data/textio.py", "lm/data/corpus.py",
                 "lm/store/paths.py", "lm/store/registry.py", "lm/train/settings.py", "lm/train/budget.py")


def _source_files() -> list[Path]:
    files = []
    for name in SOURCES:
        path = ROOT / name
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def page_titles() -> list[tuple[str, str]]:
    """(text, where) of the sections and titles in app.py's PAGES."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAGES" for t in node.targets):
            pages = ast.literal_eval(node.value)
            return [(text, "app.py PAGES") for section, _file, title, *_ in pages for text in (section, title)]
    raise SystemExit("app.py has no PAGES list")


def lm_labels() -> list[tuple[str, str]]:
    """(text, where) of the fixed labels and captions `lm` gives the pages."""
    from lm import viz  # plotly and torch: only an extraction needs them, not `--help`
    from lm.data.corpus import BUILTIN_CORPORA, corpus_title
    from lm.inspect.recurrent import FEATURES
    from lm.models import VARIANTS, variant_label

    found = [(variant_label(v), "lm.models.variant_label") for v in VARIANTS]
    found += [(corpus_title(c), "lm.data.corpus.corpus_title") for c in BUILTIN_CORPORA]
    found += [(label, "lm.viz.STATE_LABELS") for label in viz.STATE_LABELS.values()]
    found += [(label, "lm.viz.SMOOTHING_LABELS") for label in viz.SMOOTHING_LABELS.values()]
    found += [(text, "lm.inspect.recurrent.FEATURES") for item in FEATURES.items() for text in item]
    return found


def lm_errors() -> list[tuple[str, str]]:
    """(message, where) of every `LMError("text with {fields}", ...)` in ERROR_MODULES."""
    found = []
    for name in ERROR_MODULES:
        for node in ast.walk(ast.parse((ROOT / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "LMError" and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.args[0].value, name))
    return found


def extract() -> Catalog:
    """Every message of the interface, with where it was found (no translations)."""
    catalog = Catalog(locale=LOCALE, domain=DOMAIN, project="LM Playground")
    for path in _source_files():
        where = str(path.relative_to(ROOT))
        for lineno, message, comments, context in extract_from_file("python", path, keywords=KEYWORDS,
                                                                     comment_tags=("TRANSLATORS:",)):
            catalog.add(message, None, [(where, lineno)], auto_comments=comments, context=context)
    for text, where in page_titles() + lm_labels() + lm_errors():
        catalog.add(text, None, [(where, 0)])
    return catalog


def merged(template: Catalog, old: Catalog | None) -> Catalog:
    """`template` with the translations `old` has for the very same messages (nothing guessed)."""
    new = Catalog(locale=LOCALE, domain=DOMAIN, project="LM Playground", version="", fuzzy=False,
                  header_comment=HEADER, copyright_holder="LM Playground", msgid_bugs_address="",
                  creation_date=old.creation_date if old else dt.datetime.now(dt.timezone.utc),
                  revision_date=old.revision_date if old else dt.datetime.now(dt.timezone.utc),
                  last_translator=old.last_translator if old else "LM Playground <none>",
                  language_team=old.language_team if old else "LM Playground <none>")
    for message in template:
        if not message.id:
            continue
        before = old.get(message.id, message.context) if old else None
        new.add(message.id, before.string if before else ("", "") if message.pluralizable else "",
                message.locations, auto_comments=message.auto_comments, context=message.context)
    return new


def read_catalog(path: Path = PO) -> Catalog | None:
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        return read_po(f, locale=LOCALE, domain=DOMAIN)


def po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=116, include_lineno=False, sort_by_file=False)
    return buffer.getvalue()


def mo_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def messages(catalog: Catalog) -> dict:
    """{id: translation} of a catalog's messages (the header left out; plural forms as tuples)."""
    plain = (lambda x: tuple(x) if isinstance(x, (list, tuple)) else x)
    return {plain(m.id): plain(m.string) for m in catalog if m.id}


def problems() -> list[str]:
    """What is wrong with the committed catalog (empty when it is complete and compiled)."""
    old = read_catalog()
    if old is None:
        return [f"{PO.relative_to(ROOT)} is missing: run python tools/i18n.py"]
    wanted, have = set(messages(extract())), set(messages(old))
    out = [f"not in the catalog: {m!r}" for m in sorted(map(str, wanted - have))]
    out += [f"no longer used: {m!r}" for m in sorted(map(str, have - wanted))]
    out += [f"no translation: {m.id!r}" for m in old if m.id and not all(m.string if isinstance(m.string, tuple)
                                                                         else [m.string])]
    if not MO.is_file():
        out.append(f"{MO.relative_to(ROOT)} is missing: run python tools/i18n.py")
    else:
        with open(MO, "rb") as f:
            if messages(read_mo(f)) != {k: v for k, v in messages(old).items() if v and v != ("", "")}:
                out.append(f"{MO.relative_to(ROOT)} is not compiled from the .po: run python tools/i18n.py")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report what is missing or stale")
    args = parser.parse_args()
    if args.check:
        found = problems()
        print("\n".join(found) or "the catalog is complete and compiled")
        return 1 if found else 0
    old = read_catalog()
    catalog = merged(extract(), old)
    if old is None or po_bytes(catalog) != po_bytes(old):
        if old is not None and messages(catalog) != messages(old):
            catalog.revision_date = dt.datetime.now(dt.timezone.utc)
        PO.parent.mkdir(parents=True, exist_ok=True)
        PO.write_bytes(po_bytes(catalog))
    compiled = read_catalog()
    MO.write_bytes(mo_bytes(compiled))
    empty = [m.id for m in compiled if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    print(f"{PO.relative_to(ROOT)}: {len(messages(compiled))} messages, {len(empty)} without a translation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
