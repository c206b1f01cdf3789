"""The three recurrent cells of the character zoo (Elman RNN, GRU, LSTM) side by side on the Memory page."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lm.data.tokenizer import Tokenizer  # noqa: E402
from lm.inspect import compare_cells  # noqa: E402
from lm.models.rnn import RNNConfig, RNNModel  # noqa: E402
from lm.run.metrics import score  # noqa: E402
from lm.store.registry import list_models  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

TEXT = "ROMEO:\nBut soft, what light\n"


def test_compare_cells_reports_each_cell_its_states_and_its_score():
    tokenizer = Tokenizer.char(TEXT)
    models = []
    for i, cell in enumerate(("rnn", "gru", "lstm")):
        torch.manual_seed(i)
        model = RNNModel(RNNConfig(vocab_size=tokenizer.vocab_size, cell=cell, n_layers=1, d_embed=8, d_hidden=12))
        models.append(SimpleNamespace(name=f"tiny-{cell}", model=model.eval(), tokenizer=tokenizer))
    rows = compare_cells(models, TEXT, [None, 2.0, 1.5])
    assert [r.cell for r in rows] == ["rnn", "gru", "lstm"]
    assert rows[0].states == ("hidden",) and "forget" in rows[2].states and "cell" in rows[2].states
    assert rows[0].parameters < rows[1].parameters < rows[2].parameters  # 1, 3 and 4 weight blocks
    for row, m in zip(rows, models):
        assert row.bits_per_char == score(m.model, m.tokenizer, TEXT).bits_per_char
    assert [r.valid_bits_per_char for r in rows] == [None, 2.0, 1.5]


def test_the_memory_page_puts_the_zoo_s_three_cells_side_by_side(monkeypatch, tmp_path):
    monkeypatch.setenv("LM_PLAYGROUND_HOME", str(tmp_path))  # the shipped zoo only
    zoo = {m.variant for m in list_models() if m.corpus == "shakespeare" and m.tokenizer == "char"}
    assert {"rnn", "gru", "lstm"} <= zoo
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["rnn_model"] = "shakespeare-char-gru"
    at.run()
    at.switch_page("views/rnn.py").run()
    assert not at.exception, at.exception
    (table,) = [d.value for d in at.dataframe if "cell" in d.value.columns]
    assert sorted(table["cell"]) == ["Elman RNN", "GRU", "LSTM"]
    lstm = table[table["cell"] == "LSTM"].iloc[0]
    elman = table[table["cell"] == "Elman RNN"].iloc[0]
    assert lstm["held-out bits/char"] < elman["held-out bits/char"]  # the gates pay off
