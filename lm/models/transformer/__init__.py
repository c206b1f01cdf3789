"""The Transformer family: the GPT-style model (model) and its batch-1 CPU decoding step in NumPy (step)."""
