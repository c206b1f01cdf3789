"""The data side of a gradient-training run: the corpus and its train / validation / test split, the
tokenizer (a new one, the resume state's, or a fine-tuned base model's), the training ids on the device, the
fixed held-out windows every evaluation scores (and their score), and the windows of one full batch.

Batch gradient descent on a windowed language model (`batch_size="full"`): the model only ever sees windows
of `context` tokens, so "the whole corpus" is the training text cut into consecutive, non-overlapping windows
(`full_batch_starts`); every training token is a target exactly once per step, each step's gradient is the
exact gradient of the loss over the whole slice (truncated at window boundaries), and the only randomness
left is dropout. One step then costs a pass over the slice, so it is meant for a small slice (`max_chars`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lm.i18n import N_  # job records keep the English line; the Train page translates it
from lm.data.corpus import Corpus, CorpusSplit, load_corpus
from lm.data.tokenizer import Tokenizer, make_tokenizer
from lm.errors import LMError

MAX_UNSEEN_SHOWN = 8  # unknown characters named in the fine-tuning refusal


@dataclasses.dataclass
class TrainData:
    corpus: Corpus
    split: CorpusSplit
    tokenizer: Tokenizer
    train_ids: torch.Tensor  # [N] on the device
    n_windows: int  # distinct random windows of context + 1 tokens
    offsets: torch.Tensor  # [T + 1]
    eval_windows: torch.Tensor  # [n, t + 1]: the fixed held-out sample
    valid_tokens_per_char: float


def check_known_characters(tokenizer: Tokenizer, text: str, base_name: str) -> None:
    """Refuse, in one line, text with characters a fine-tuned character model has never seen."""
    if tokenizer.kind == "bpe":
        return  # byte-level BPE encodes every character (char and word vocabularies have an <unk>)
    _, unseen = tokenizer.encode_report(text)
    if unseen:
        shown = ", ".join(repr(c) for c in unseen[:MAX_UNSEEN_SHOWN]) + (", ..." if len(unseen) > MAX_UNSEEN_SHOWN
                                                                          else "")
        raise LMError(f"{base_name} has never seen {len(unseen)} of this text's characters ({shown}); "
                      "fine-tuning keeps its tokenizer: remove them from the text or train a new model")


def full_batch_starts(n_tokens: int, context: int) -> np.ndarray:
    """Starts of the consecutive, non-overlapping windows (context + 1 tokens, stride context) of one full
    batch: every token after the first is a target exactly once."""
    return np.arange((n_tokens - 1) // context, dtype=np.int64) * context


def load_data(settings, plan, device: torch.device, saved: dict[str, Any] | None, base_tokenizer: Tokenizer | None,
              event) -> TrainData:
    """Everything a run reads, tokenized and checked (one-line LMErrors for texts too short to train on)."""
    s = settings
    event("setup", message=f"loading corpus {s.corpus}")
    corpus = load_corpus(s.corpus, max_chars=s.max_chars)  # a Path is always a file, a str may be built-in
    split = corpus.split(test_every=s.test_every or None)
    if saved is not None:
        tokenizer = saved["tokenizer_obj"]
    elif base_tokenizer is not None:
        check_known_characters(base_tokenizer, corpus.text, Path(str(s.init_from)).name)
        tokenizer = base_tokenizer
    else:
        event("setup", message=f"building the {s.tokenizer} tokenizer")
        tokenizer = make_tokenizer(s.tokenizer, corpus.text, split.train.text, s.vocab_size)
    event("setup", message=N_("tokenizing"))
    train_ids = tokenizer.encode(split.train.text)
    valid_ids = tokenizer.encode(split.valid.text)
    T = plan.context
    if len(train_ids) < T + 2:
        raise LMError(f"the corpus's training split has {len(train_ids)} tokens, fewer than the context of "
                      f"{T} + 2; use a longer text or a smaller --context")
    if len(valid_ids) < 2:
        raise LMError("the corpus's held-out split is too short to evaluate on (it needs 2 tokens)")
    # the fixed held-out sample: evenly spaced windows, the same at every evaluation and across resumes
    t_eval = min(T, len(valid_ids) - 1)
    n_eval = min(s.eval_windows, len(valid_ids) - t_eval)
    starts = np.linspace(0, len(valid_ids) - t_eval - 1, n_eval).astype(np.int64)
    valid = torch.tensor(valid_ids, dtype=torch.long)
    return TrainData(
        corpus, split, tokenizer, torch.tensor(train_ids, dtype=torch.long, device=device),
        len(train_ids) - (T + 1) + 1, torch.arange(T + 1, device=device),
        torch.stack([valid[a:a + t_eval + 1] for a in starts]).to(device),
        len(valid_ids) / max(1, len(split.valid.text)))


@torch.no_grad()
def held_out_loss(model, windows: torch.Tensor, batch_size: int) -> float:
    """Mean nats per token of `model` on the fixed held-out windows (dropout off while scoring)."""
    model.eval()
    total, count = 0.0, 0
    for chunk in windows.split(batch_size):
        logits = model.logits(chunk[:, :-1]).float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum")
        total += float(loss)
        count += chunk[:, 1:].numel()
    model.train()
    return total / max(1, count)
