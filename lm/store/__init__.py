"""Storage: the checkpoint format (checkpoint) and how a name becomes a model (registry)."""
