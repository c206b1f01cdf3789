"""Every Plotly figure and HTML token painting the pages show, as pure functions of `lm` results.

`from lm import viz` gives them all (`viz.attention_heatmap(...)`); each lives in a submodule by subject.
"""

from lm.viz.figures import (  # noqa: F401  re-exported as one namespace
    FONT, GRID_TEMPLATE, MAX_GRID_CELLS, MAX_LABEL_CHARS, NEGATIVE_RGB, PASTELS, POSITIVE_RGB, SEQUENTIAL_RGB,
    SMOOTHING_LABELS, STATE_LABELS, TEMPLATE, attention_grid, attention_heatmap, attention_text_html,
    head_summary_figure, order_chart, pool_square, saturation_figure, smoothing_bars, state_colors, state_heatmap,
    token_boundaries_html, token_labels, tokens_html, unit_line, unit_text_html, visible, vocab_length_chart,
)
