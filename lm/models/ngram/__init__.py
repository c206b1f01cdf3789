"""The n-gram family: counting (counts), smoothing and its caches (smoothing), the back-off trace (backoff), the LanguageModel (model)."""
