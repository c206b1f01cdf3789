"""The Transformer block's parts that every way of running it shares: the MLP's activation functions."""

from __future__ import annotations

import torch.nn.functional as F

# activation name -> function. "gelu_tanh" is GPT-2's "gelu_new": 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
ACTIVATIONS = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
}
