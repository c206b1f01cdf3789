"""Train: pick a corpus (or upload one), a tokenizer, a family and a size, and watch the loss fall, live."""

import math

import streamlit as st

from lm import viz
from lm.data.corpus import BUILTIN_CORPORA, corpus_title
from lm.data.tokenizer import TOKENIZER_KINDS
from lm.errors import LMError
from lm.app.jobs import ACTIVE, get_manager, progress_fraction, save_upload, suggest_name, upload_max_bytes
from lm.data.textio import format_size
from lm.models import VARIANTS, spec_for_variant, variant_label
from lm.train.settings import PRESET_CHOICES, TrainSettings
from ui.state import init_from_query, write_query
from ui.widgets import clamp_state

SOURCES = ("Built-in corpus", "Upload a .txt")
DEFAULTS = {"tr_source": SOURCES[0], "tr_corpus": "names", "tr_tokenizer": "char", "tr_vocab": 512,
            "tr_family": "lstm", "tr_preset": "tiny", "tr_steps": 300, "tr_minutes": 2.0, "tr_max_chars": 0,
            "tr_name": ""}
STATUS_ICONS = {"queued": ":material/hourglass_empty:", "running": ":material/directions_run:",
                "finished": ":material/check_circle:", "cancelled": ":material/stop_circle:",
                "failed": ":material/error:", "interrupted": ":material/warning:"}


def settings_form():
    """The left column: what to train. Returns (TrainSettings | None, clicked)."""
    st.radio("Corpus", SOURCES, key="tr_source", horizontal=True)
    upload = None
    if st.session_state["tr_source"] == SOURCES[0]:
        st.selectbox("Built-in corpus", BUILTIN_CORPORA, key="tr_corpus", format_func=corpus_title)
    else:
        upload = st.file_uploader(f"Your text (.txt, UTF-8, up to {format_size(upload_max_bytes())})", type=["txt"],
                                  key="tr_upload")
    a, b = st.columns(2)
    a.radio("Tokenizer", TOKENIZER_KINDS, key="tr_tokenizer", horizontal=True,
            format_func=lambda t: {"char": "characters", "bpe": "BPE pieces"}[t])
    if st.session_state["tr_tokenizer"] == "bpe":
        b.slider("BPE vocabulary", 260, 4096, step=4, key="tr_vocab")
    a, b = st.columns([2, 3])
    a.selectbox("Model family", list(VARIANTS), key="tr_family", format_func=variant_label)
    b.radio("Size", PRESET_CHOICES, key="tr_preset", horizontal=True)
    if spec_for_variant(st.session_state["tr_family"]).gradient:
        a, b = st.columns(2)
        a.number_input("Max steps", 1, 100_000, step=50, key="tr_steps")
        b.number_input("Max minutes", 0.1, 120.0, step=0.5, key="tr_minutes", help="Training stops at whichever comes first.")
    st.number_input("Use the first N characters of the corpus (0 = all)", 0, 50_000_000, step=100_000, key="tr_max_chars")
    corpus_label = "upload" if upload is None and st.session_state["tr_source"] == SOURCES[1] else (
        upload.name.rsplit(".", 1)[0] if upload is not None else st.session_state["tr_corpus"])
    suggested = suggest_name(f"{corpus_label}-{st.session_state['tr_tokenizer']}-{st.session_state['tr_family']}")
    st.text_input("Model name", key="tr_name", placeholder=suggested, help="Lowercase letters, digits, '-', '_', '.'")
    clicked = st.button("Start training", key="tr_start", type="primary")
    if not clicked:
        return None, False
    try:
        if st.session_state["tr_source"] == SOURCES[1]:
            if upload is None:
                raise LMError("choose a .txt file to upload first")
            corpus = str(save_upload(upload.getvalue(), upload.name))
        else:
            corpus = st.session_state["tr_corpus"]
        neural = spec_for_variant(st.session_state["tr_family"]).gradient
        settings = TrainSettings(
            family=st.session_state["tr_family"], corpus=corpus, tokenizer=st.session_state["tr_tokenizer"],
            vocab_size=st.session_state["tr_vocab"] if st.session_state["tr_tokenizer"] == "bpe" else None,
            name=st.session_state["tr_name"].strip() or suggested, preset=st.session_state["tr_preset"],
            max_chars=st.session_state["tr_max_chars"] or None,
            steps=st.session_state["tr_steps"] if neural else None,
            minutes=st.session_state["tr_minutes"] if neural else None, device="cpu",
            save_minutes=0.5)  # a server crash costs at most half a minute of a class's training
    except LMError as exc:
        st.error(str(exc))
        return None, True
    return settings, True


def job_panel(job_id: str) -> None:
    """Live view of one job: status, progress, loss curves, cancel/resume. Polls while the job is active."""
    manager = get_manager()
    record = manager.get(job_id)
    if record is None:
        st.info("No such training job.")
        return
    active = record["status"] in ACTIVE

    @st.fragment(run_every=1 if active else None)
    def panel() -> None:
        rec = manager.get(job_id)
        st.markdown(f"### {STATUS_ICONS.get(rec['status'], '')} {rec['name']} — {rec['status']}")
        p = rec["progress"]
        total = f" / {p['total']:,}" if p.get("total") else ""
        st.progress(progress_fraction(rec), text=f"step {p.get('step', 0):,}{total} · {p.get('elapsed', 0):.0f} s · "
                                                  f"{rec.get('message') or ''}"[:160])
        if rec["status"] == "failed":
            st.error(rec.get("error") or "training failed")
        train, valid = rec["history"]["train"], rec["history"]["valid"]
        cols = st.columns(3)
        cols[0].metric("Training loss", f"{train[-1][1]:.3f}" if train else "—")
        cols[1].metric("Validation loss", f"{valid[-1][1]:.3f}" if valid else "—")
        bpc = (rec.get("result") or {}).get("valid_bits_per_char") or (valid[-1][2] if valid else None)
        cols[2].metric("Held-out bits/char", f"{bpc:.3f}" if isinstance(bpc, (int, float)) and math.isfinite(bpc) else "—")
        if train or valid:
            st.plotly_chart(viz.loss_figure(train, valid), key="tr_loss_chart", width="stretch")
        if rec["status"] in ACTIVE:
            if st.button("Cancel", key="tr_cancel"):
                manager.cancel(job_id)
        elif rec["status"] != "failed" and (rec.get("result") or {}).get("path"):
            st.success(f"**{rec['name']}** is ready and listed in every model picker.")
            st.page_link("pages/playground.py", label=f"Try {rec['name']} in the Playground", icon=":material/edit_note:",
                         query_params={"model": rec["name"]})
        if rec.get("resumable"):
            if st.button("Resume training", key="tr_resume"):
                try:
                    manager.resume(job_id)
                except LMError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
        if active and rec["status"] not in ACTIVE:
            st.rerun()  # the run ended: redraw the page once so pickers and this panel stop polling

    panel()


def jobs_table() -> None:
    jobs = get_manager().list()
    if not jobs:
        return
    st.subheader("Recent trainings")
    st.dataframe([{"Model": j["name"], "Status": j["status"],
                   "Family": j["settings"].get("family"), "Corpus": str(j["settings"].get("corpus", "")).rsplit("/", 1)[-1],
                   "Steps": j["progress"].get("step"), "Bits/char": (j.get("result") or {}).get("valid_bits_per_char"),
                   "Job": j["id"]} for j in jobs[:20]], hide_index=True, width="stretch", key="tr_jobs_table")


def main() -> None:
    st.title("Train a model")
    init_from_query(DEFAULTS, allowed={"tr_source": SOURCES, "tr_corpus": BUILTIN_CORPORA,
                                       "tr_tokenizer": TOKENIZER_KINDS, "tr_family": list(VARIANTS),
                                       "tr_preset": PRESET_CHOICES})
    init_from_query({"job": ""})
    clamp_state({"tr_vocab": (260, 4096), "tr_steps": (1, 100_000), "tr_minutes": (0.1, 120.0),
                 "tr_max_chars": (0, 50_000_000)})
    st.caption("Pick some text and a model, press start, and watch it learn. Tiny models train in under a minute; "
               "the finished model shows up in every page's model picker.")
    left, right = st.columns([2, 3], gap="large")
    with left:
        settings, clicked = settings_form()
        if settings is not None:
            try:
                st.session_state["job"] = get_manager().submit(settings)
            except LMError as exc:
                st.error(str(exc))
    write_query(["tr_source", "tr_corpus", "tr_tokenizer", "tr_vocab", "tr_family", "tr_preset", "tr_steps",
                 "tr_minutes", "tr_max_chars", "job"])
    with right:
        manager = get_manager()
        # nothing chosen: show the run in progress, else one the server's restart interrupted (to resume it)
        job_id = st.session_state.get("job") or next((j["id"] for j in manager.active()), "") or next(
            (j["id"] for j in manager.list() if j["status"] == "interrupted" and j.get("resumable")), "")
        if job_id:
            st.session_state["job"] = job_id  # keep showing this run once it ends (the defaults find only
            job_panel(job_id)  # live or interrupted runs, and a finished one would vanish at the next redraw)
        else:
            st.info("Nothing training right now. Choose a corpus and a model on the left and press **Start training**.")
        jobs_table()


main()
