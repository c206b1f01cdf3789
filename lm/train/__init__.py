"""Training: one entry point, `lm.train.loop.train(TrainSettings, callback)`, for every family.

- `settings`: `TrainSettings`, `TrainEvent`, `TrainResult`, the choices, and `resolve_settings`, which checks
  everything (presets come from the family specs in `lm.models`) before any work is done; no torch import;
- `loop`: `train`, and gradient training of the neural families (seeded, resumable, data-parallel);
- `ngram`: counting an n-gram model (as a zoo recipe is counted) plus its held-out evaluation;
- `schedule`: the learning-rate schedule, the per-step batch stream, the process group;
- `state`: the resume state (safetensors + JSON, no pickle).
"""
