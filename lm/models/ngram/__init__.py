"""The n-gram family: counting (counts), smoothing and its caches (smoothing), the back-off trace (backoff),
the shared LanguageModel paths (scoring), the counted model (model), hash indexes (keyindex), ARPA files
(arpa: export and parse; arpa_model: the read-only model of a file)."""
