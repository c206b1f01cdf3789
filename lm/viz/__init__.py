"""Every Plotly figure and HTML token painting the pages show, as pure functions of `lm` results (no Streamlit).

`from lm import viz` gives them all (`viz.attention_heatmap(...)`, `fig.show()` in a notebook); each lives in
a submodule by subject:

- `style`: fonts, colours, templates, token labels that show their whitespace (`visible`, `token_labels`);
- `attention`: one head, every head, per-head summaries;
- `recurrent`: states over time × unit, one unit, gate saturation;
- `ngram`: smoothing comparison, held-out score against order, an ARPA file's n-grams per order and back-off path;
- `tokens`: text painted token by token as escaped HTML, GLTR's rank colours (`rank_bins`, `gltr_html`);
- `explain`: "Why this token?": attribution on the text and as bars, an ablation's effect, the logit lens,
  the attention step by step, the embedding projection;
- `charts`: the Playground's knob stages and GLTR histograms, the Compare matrix and surprisal, the Train
  loss, the BPE ladder;
- `train`: the training lab: a race's curves on steps / tokens / seconds, the sample timeline, a fine-tuned
  model's before/after bars.
"""

from lm.viz.style import (  # noqa: F401  re-exported as one namespace
    FONT, GRID_TEMPLATE, MAX_LABEL_CHARS, NEGATIVE_RGB, PASTELS, POSITIVE_RGB, SEQUENTIAL_RGB, SMOOTHING_LABELS,
    STATE_LABELS, TEMPLATE, token_labels, visible,
)
from lm.viz.attention import (  # noqa: F401
    MAX_GRID_CELLS, attention_grid, attention_heatmap, head_summary_figure, pool_square,
)
from lm.viz.recurrent import saturation_figure, state_colors, state_heatmap, unit_line  # noqa: F401
from lm.viz.ngram import backoff_path_chart, listed_orders_chart, order_chart, smoothing_bars  # noqa: F401
from lm.viz.tokens import (  # noqa: F401
    RankBin, attention_text_html, gltr_html, gltr_legend_html, rank_bin, rank_bins, token_boundaries_html, tokens_html,
    unit_text_html,
)
from lm.viz.charts import (  # noqa: F401
    CUT_COLOUR, LOSS_COLOURS, MODEL_COLOURS, STAGE_COLOURS, STAGE_TITLES, cross_score_heatmap, gltr_histograms,
    loss_figure, stage_figure, surprisal_figure, vocab_length_chart,
)
from lm.viz.explain import (  # noqa: F401
    CLASS_COLOURS, attribution_bars, attribution_html, distribution_change, embedding_figure, logit_lens_figure,
    steps_figures,
)
from lm.viz.train import (  # noqa: F401
    RACE_AXES, RACE_CURVES, adaptation_figure, race_figure, run_label, samples_html,
)
