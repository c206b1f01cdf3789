"""Training: one entry point, `lm.train.loop.train(TrainSettings, callback)`, for every family.

- `settings`: `TrainSettings`, `TrainEvent`, `TrainResult`, the choices (`OPTIMIZERS`), `resolve_settings`,
  which checks everything (presets come from the family specs in `lm.models`) before any work is done, and
  `fine_tune_settings`; no torch import;
- `knobs`: every setting a person can turn, with its one-line help (the CLI and the Train page loop over it);
- `loop`: `train`, and gradient training of the neural families (seeded, resumable, data-parallel);
- `data`: the corpus, its train / validation / test split, the tokenizer and the batches' windows;
- `step`: one step's forward and backward pass (micro-batches, bf16 autocast, seeded dropout);
- `optim`: the `torch.optim` optimizer of a run; `schedule`: the learning-rate schedule, the per-step batch
  stream, the process group; `state`: the resume state (safetensors + JSON, no pickle);
- `control`: pause / resume / run to the next evaluation; `scoring`: samples, the test split, the fine-tuning
  report; `base`: the model a fine-tuning run starts from; `adapt`: adapting an n-gram by adding counts;
- `ngram`: counting an n-gram model (as a zoo recipe is counted) plus its held-out evaluation;
- `budget`: memory and time estimates before a run starts.
"""
