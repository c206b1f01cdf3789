"""The class-server parts of the Train page: a student's own models and uploads (with Delete), and the
teacher's panel (with `LM_TEACHER_TOKEN` set): cancel any run, delete anything, switch training off and on,
see the server's memory and disk use.

Who may do what is decided in `lm.app` (`JobManager.may_control`, `delete_model`, `delete_upload`); this module
only shows the controls to those they would accept, and passes `by` along so a crafted click is refused there
too. Names, file names and errors reach the page through `md_text` (they come from students).
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from lm.app.jobs import TEACHER, max_concurrent_from_env
from lm.app.quotas import folder_bytes
from lm.app.uploads import corpora_dir, delete_upload, list_uploads
from lm.app.worker import process_rss
from lm.data.textio import format_size
from lm.errors import LMError
from lm.store.registry import home_dir, list_models
from ui.i18n import N_, _
from ui.session import is_teacher, teacher_enabled, try_teacher_token
from ui.widgets import md_literal, show_error

CONFIRM = "tr_confirm"  # session key: [where, "model" | "upload", name] waiting for "Yes, delete"
STATUSES = {"queued": N_("queued"), "running": N_("running"), "finished": N_("finished"),  # a job record's status
            "cancelled": N_("cancelled"), "failed": N_("failed"), "interrupted": N_("interrupted")}


def status_label(status) -> str:
    """A job's status in the session's language (an unknown one, from a damaged record, as it is)."""
    return _(STATUSES[status]) if status in STATUSES else str(status)


def delete_button(kind: str, target: str, delete, where: str = "list") -> None:
    """A Delete button; a second click on "Yes, delete" does it (one slip must not lose a lesson's work).
    `where` tells apart two buttons for one thing on one page (the run's panel and the list)."""
    asked = [where, kind, target]
    if st.session_state.get(CONFIRM) != asked:
        if st.button(_("Delete"), key=f"tr_del_{where}_{kind}_{target}", icon=":material/delete:"):
            st.session_state[CONFIRM] = asked
            st.rerun()
        return
    yes, no = st.columns(2)
    if yes.button(_("Yes, delete"), key=f"tr_yes_{where}_{kind}_{target}", type="primary"):
        st.session_state.pop(CONFIRM, None)
        try:
            delete()
        except LMError as exc:
            show_error(exc)
        else:
            st.rerun()
    if no.button(_("Keep"), key=f"tr_no_{where}_{kind}_{target}"):
        st.session_state.pop(CONFIRM, None)
        st.rerun()


def my_work(manager, by: str, me: str) -> None:
    """Models and uploads this browser made (the teacher: everyone's), each with Delete."""
    teacher = by == TEACHER
    made = {r["name"] for r in manager.list() if r.get("owner_token") == me}
    busy = {r["name"] for r in manager.active()}
    models = [m for m in list_models() if m.source == "user" and (teacher or m.name in made)]
    uploads = [u for u in list_uploads() if teacher or u["owner"] == me]
    if not models and not uploads:
        return
    title = _("Everyone's models and uploads") if teacher else _("Your models and uploads")
    with st.expander(f"{title} ({len(models) + len(uploads)})", icon=":material/folder_open:"):
        for info in models:
            name, action = st.columns([3, 1], vertical_alignment="center")
            name.markdown(" · ".join((md_literal(info.name), _("model"), format_size(folder_bytes(info.path)))))
            with action:
                if info.name in busy:
                    st.caption(_("training"))
                else:
                    delete_button("model", info.name, lambda n=info.name: manager.delete_model(n, by=by))
        for upload in uploads:
            name, action = st.columns([3, 1], vertical_alignment="center")
            name.markdown(" · ".join((md_literal(upload["path"].name), _("uploaded text"),
                                      format_size(upload["bytes"]))))
            with action:
                delete_button("upload", upload["path"].name,
                                 lambda p=upload["path"]: delete_upload(p, by=by))
        st.caption(_("Uploaded texts are visible to the whole class (the Compare page quotes them) until deleted."))


def _memory_and_disk(manager) -> None:
    home = Path(home_dir())
    rows = [(_("This server"), process_rss(os.getpid()))]
    for record in manager.active():
        pid = manager.worker_pid(record["id"])
        rows.append((_("Training {name}").format(name=md_literal(record["name"])), process_rss(pid) if pid else None))
    memory = " · ".join(f"{label}: {format_size(size) if size else '—'}" for label, size in rows)
    st.markdown(_("**Memory** {memory} · training budget {budget} per run").format(
        memory=memory, budget=format_size(manager.memory_budget)))
    disk = {_("models"): home / "models", _("uploads"): corpora_dir(home), _("cache"): home / "cache"}
    st.markdown(_("**Disk** {sizes}").format(sizes=" · ".join(f"{label}: {format_size(folder_bytes(path))}"
                                                              for label, path in disk.items())))


def teacher_panel(manager) -> None:
    """The admin expander: only on a server started with LM_TEACHER_TOKEN."""
    if not teacher_enabled():
        return
    with st.expander(_("Teacher"), icon=":material/admin_panel_settings:", expanded=is_teacher()):
        if not is_teacher():
            entered = st.text_input(_("Teacher token"), type="password", key="tr_teacher_token")
            if st.button(_("Unlock"), key="tr_teacher_unlock"):
                if try_teacher_token(entered):
                    st.rerun()
                st.error(_("That is not this server's teacher token."))
            return
        on = manager.max_concurrent > 0
        st.markdown(_("Training is **on** on this server.") if on else _("Training is **off** on this server."))
        if st.button(_("Switch training off") if on else _("Switch training on"), key="tr_teacher_switch"):
            manager.max_concurrent = 0 if on else max(1, max_concurrent_from_env())
            st.rerun()
        for record in manager.active():
            label, action = st.columns([3, 1], vertical_alignment="center")
            label.markdown(f"{md_literal(record['name'])} · {status_label(record['status'])}")
            if action.button(_("Cancel"), key=f"tr_teacher_cancel_{record['id']}"):
                manager.cancel(record["id"], by=TEACHER)
                st.rerun()
        _memory_and_disk(manager)
        if manager.active():
            st.caption(_("Cancelling saves what a run has learnt; its owner can resume it."))
