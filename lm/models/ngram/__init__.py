"""The n-gram family: counting (counts), smoothing and its caches (smoothing), the back-off trace (backoff),
the shared LanguageModel paths (scoring), whole-text scoring (textscore), the counted model (model), its
checkpoint tensors (storage), hash indexes (keyindex), ARPA files (arpa: export and parse; arpa_model: the
read-only model of a file)."""
