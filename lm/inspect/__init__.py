"""Inspection: tokenise and trace a text, and the summaries the internals pages show.

- `text`: `inspect_text` -> `Inspection` (display tokens, ids, character spans, the family's trace), the
  next-token distribution and its top tokens, token counts under several tokenizers;
- `attention`: per-head entropy, mean distance and pattern shares of an `AttentionTrace`;
- `recurrent`: gate saturation and units that track simple text features;
- `ngram`: held-out bits/char against the order, smoothing comparison, counts and the back-off path;
- `samples`: a page's first text, one the chosen model can read, fitted to its context.

`from lm import inspect` gives every public name of the submodules as one namespace:

    from lm import inspect
    from lm.store.registry import load_model
    ins = inspect.inspect_text(load_model("shakespeare-char-transformer"), "ROMEO:\\nBut soft!")
    inspect.head_summary(ins.trace.attention).entropy          # [layers, heads]
"""

from lm.inspect.text import (  # noqa: F401
    Inspection, MAX_ATTENTION_CELLS, MAX_CHARS_PER_TOKEN, MAX_TEXT_CHARS, MAX_TRACE_TOKENS, TokenCount, as_array,
    bpe_training_text, cut_note, inspect_text, next_token_distribution, painted_by, token_counts, token_spans,
    top_tokens, trace_cap, unknown_note,
)
from lm.inspect.attention import (  # noqa: F401
    PATTERN_SHARE, HeadSummary, attention_entropy, describe_head, head_summary, mean_attention_distance,
    notable_head,
)
from lm.inspect.recurrent import (  # noqa: F401
    FEATURES, SATURATION_HIGH, SATURATION_LOW, SIGMOID_STATES, TANH_STATES, CellRow, UnitMatch, char_features,
    compare_cells, correlations, feature_units, gate_saturation, token_features,
)
from lm.inspect.ngram import (  # noqa: F401
    NGRAM_SCORE_CHARS, NGRAM_SMOOTHINGS, OrderScore, backoff_caption, backoff_table, counts_are_continuations,
    describe_order_scores, ngram_backoff, ngram_counts, ngram_order_scores, ngram_smoothing_comparison,
    ngram_valid_text,
)
from lm.inspect.samples import SAMPLE_CHARS, corpus_sample, fit_to_tokens, readable, sample_for  # noqa: F401
