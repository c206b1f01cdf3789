"""Running a model: sampling knobs (sampling), the one generation loop (generate), scoring and metrics (metrics)."""
