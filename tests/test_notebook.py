"""docs/notebook.md runs as written: every ```python block, in order, in one namespace (as a notebook would),
and each block that draws a figure draws the page's figure with data in it."""

from __future__ import annotations

import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "notebook.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def test_the_notebook_examples_run_and_draw_the_pages_figures(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    monkeypatch.chdir(tmp_path)  # the examples write their files (an ARPA file, a GPT-2 directory) here
    code = blocks()
    assert len(code) >= 8
    namespace: dict = {}
    figures = 0
    for block in code:
        namespace.pop("fig", None)
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own examples
        fig = namespace.get("fig")
        if fig is not None:
            assert isinstance(fig, go.Figure) and len(fig.data) > 0
            figures += 1
    assert figures == 3  # attention, memory, counting
    printed = capsys.readouterr().out
    first, again = re.findall(r"([\d.]+) bits per character", printed)
    assert abs(float(first) - float(again)) < 1e-3  # the ARPA file scores like the model it came from
    assert [row["order"] for row in namespace["table"]] == [4, 3, 2, 1]  # "mar" + the target: orders 4..1
    assert namespace["ins"].trace.smoothing == "arpa" and len(namespace["ins"].trace.rows) == 8
    ids = torch.tensor([namespace["hf_tokenizer"]("mary\njohn")["input_ids"]])
    from lm.store.registry import load_model

    expected = torch.log_softmax(load_model("names-char-transformer").model.logits(ids), -1)
    got = torch.log_softmax(namespace["logits"].detach(), -1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
