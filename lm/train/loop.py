"""Producing models: counting n-gram tables, and gradient training of the RNN family and the Transformer.

Every way of making a model ends in a checkpoint whose config.json says how the model was made: corpus and
split, tokenizer, settings, tokens seen, seconds, device, loss history and held-out metrics.

`train(TrainSettings, callback)` is the one training entry point, shared by `python -m lm train`, the app
and `torchrun` (data-parallel runs are detected from the RANK / WORLD_SIZE environment, no second code
path). It never prints: progress goes to `callback(TrainEvent)`, whose truthy return (or a set
`settings.should_stop`) stops the run cleanly, saving what was trained so far.

Reproducibility without a global seed: weights are drawn from a `torch.Generator(seed)`, and batch `step`
of rank `r` is a pure function of (seed, r, step) (`np.random.default_rng([seed, r, step])`), so a resumed
run samples exactly the batches the uninterrupted run would have. Dropout is the one place PyTorch offers
no generator argument: its masks come from the global generator, so each step runs its forward pass inside
`torch.random.fork_rng()` seeded from the same (seed, r, step) stream; the caller's global RNG state is
restored afterwards and nothing leaks out. A lock serialises those forked passes (and the model constructors,
which draw PyTorch's default init from the global RNG) between runs in one process, such as the app's
background jobs; other code drawing from the global RNG meanwhile would break bit-reproducibility (nothing in
`lm` does: it passes generators).

Resume state (`<checkpoint>.resume/`, written atomically every `save_every` steps, every few minutes, and
when a run is stopped) holds the model, the best model so far and the optimizer state as safetensors, and
every scalar (step, counters, optimizer hyper-parameters, loss history) as JSON. No pickle.

The history (config.json's `training.history`, and every event) says, besides the losses, how many tokens
the run had seen and how many seconds it had trained at each point (`clock`: [step, tokens, seconds], the
races' other time axes) and what the model wrote at each evaluation (`samples`: [step, text], from
`sample_prompt` with the run's seed; step 0 is the untrained model). `settings.control` (a PauseGate)
pauses the run between two steps; paused time is not training time. With `init_from` the run starts from
that model's weights and tokenizer, and config.json's `metrics.adaptation` says what it gained and forgot.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from typing import Any

import torch

from lm.i18n import N_  # job records keep the English line; the Train page translates it
from lm.errors import LMError
from lm.models import FAMILIES, build_model, family_classes
from lm.run.metrics import held_out_metrics
from lm.store.checkpoint import save_checkpoint
from lm.store.registry import load_model
from lm.train.adapt import adapt_ngram
from lm.train.base import read_base
from lm.train.budget import check_memory, estimate_run
from lm.train.data import full_batch_starts, held_out_loss, load_data
from lm.train.ngram import train_ngram
from lm.train.optim import optimizer_for
from lm.train.schedule import DistInfo, init_distributed, train_device, lr_at, sample_starts, write_checksum
from lm.train.scoring import adaptation_report, sample_text, score_test_split
from lm.train.settings import Callback, TrainEvent, TrainResult, TrainSettings, _Plan, emit, resolve_settings
from lm.train.state import _load_into, _read_resume, _save_resume, resume_dir_for
from lm.train.step import GLOBAL_RNG_LOCK, forward_backward, use_bf16

def _stop_requested(settings: TrainSettings) -> bool:
    flag = settings.should_stop
    return bool(flag is not None and flag.is_set())


def train(settings: TrainSettings, callback: Callback | None = None, *, memory_budget: int | None = None) -> TrainResult:
    """Train (or count) the model `settings` describe and save its checkpoint; see the module docstring.

    `memory_budget` (bytes): refuse, with a one-line LMError and before any work, a run estimated not to fit
    (`lm.train.budget`); None: no limit (the CLI on one's own machine, unless $LM_TRAIN_MEMORY_MB is set).
    """
    plan = resolve_settings(settings)
    check_memory(estimate_run(settings, plan), memory_budget)
    if not FAMILIES[plan.family].gradient:
        return (adapt_ngram if settings.init_from else train_ngram)(settings, plan, callback)
    previous_threads = torch.get_num_threads()
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    device = train_device(settings.device, world)
    dist_info = init_distributed(device)
    if plan.full_batch and dist_info.enabled:
        raise LMError("batch gradient descent (batch_size 'full') runs in one process, not under torchrun")
    try:
        return _Run(settings, plan, device, dist_info, callback).run()
    finally:
        if dist_info.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
        if settings.threads is not None:
            torch.set_num_threads(previous_threads)


class _Run:
    """One gradient-training run; split into methods only to keep each step readable."""

    def __init__(self, settings: TrainSettings, plan: _Plan, device: torch.device, dist_info: DistInfo,
                 callback: Callback | None):
        self.s, self.plan, self.device, self.dist, self.callback = settings, plan, device, dist_info, callback
        self.resume_dir = resume_dir_for(plan.directory)
        self.bf16 = use_bf16(settings.precision, device)  # lm/train/step.py

    # -- setup ------------------------------------------------------------------------------------------
    def _event(self, phase: str, **kw) -> bool:
        if not self.dist.main:
            return False
        base = dict(step=getattr(self, "step", 0), total=self.plan.steps, train_loss=None,
                    valid_loss=getattr(self, "last_valid", None), lr=getattr(self, "lr", 0.0),
                    tokens_per_second=0.0, elapsed=self._elapsed() if hasattr(self, "t0") else 0.0, phase=phase,
                    valid_bits_per_char=getattr(self, "last_valid_bpc", None),
                    tokens_seen=getattr(self, "tokens_seen", None))
        base.update(kw)
        return emit(self.callback, TrainEvent(**base))

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.t0) - self.paused_seconds

    def _load_data(self, saved: dict[str, Any] | None) -> None:
        self.base = self.base_model = None
        if self.s.init_from is not None:  # fine-tuning: the base's tokenizer, and its weights when starting
            self.base = read_base(self.s.init_from)
            self.base_model = load_model(self.s.init_from)
        data = load_data(self.s, self.plan, self.device, saved,
                         self.base_model.tokenizer if self.base_model is not None else None, self._event)
        self.corpus, self.split, self.tokenizer = data.corpus, data.split, data.tokenizer
        self.train_ids, self.n_windows, self.offsets = data.train_ids, data.n_windows, data.offsets
        self.eval_windows, self.valid_tokens_per_char = data.eval_windows, data.valid_tokens_per_char
        self.full_starts = None
        if self.plan.full_batch:
            starts = full_batch_starts(len(self.train_ids), self.plan.context)
            self.full_starts = torch.from_numpy(starts).to(self.device)

    def _build(self, saved: dict[str, Any] | None) -> None:
        config = self.plan.config(self.tokenizer.vocab_size)
        _, model_cls = family_classes(self.plan.family)
        generator = torch.Generator().manual_seed(self.s.seed)
        # same initial weights on every rank. Module constructors also run PyTorch's default init on the global
        # RNG before `generator` overwrites it: fork it, so that draw cannot shift another run's dropout masks
        with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
            model = model_cls(config, generator=generator)
        if saved is not None:
            _load_into(model, saved["model_tensors"], "the resume state's model.safetensors")
        elif self.base_model is not None:
            _load_into(model, self.base_model.model.state_tensors(), f"{self.base.name}'s weights")
        self.model = model.to(self.device)
        self.model.train()
        self.optimizer = optimizer_for(self.model, self.s.optimizer, self.plan, self.device, saved)
        self.net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DistributedDataParallel(self.model, device_ids=ids)

    def _restore_counters(self, saved: dict[str, Any] | None) -> None:
        self.step = 0
        self.elapsed_before = 0.0
        self.tokens_seen = 0
        self.history: dict[str, list] = {"train": [], "valid": [], "clock": [], "samples": []}
        self.best_loss = math.inf
        self.best_step = 0
        self.best_tensors: dict[str, torch.Tensor] | None = None
        self.last_valid = self.last_valid_bpc = None
        if saved is not None:
            self.step = int(saved["step"])
            self.elapsed_before = float(saved["elapsed"])
            self.tokens_seen = int(saved["tokens_seen"])
            self.history = {"clock": [], "samples": [], **saved["history"]}  # (states saved before either)
            self.best_loss = float(saved["best_loss"]) if saved["best_loss"] is not None else math.inf
            self.best_step = int(saved["best_step"])
            self.best_tensors = saved["best_tensors"]
            self.last_valid, self.last_valid_bpc = saved.get("last_valid"), saved.get("last_valid_bpc")

    # -- pieces of a step -------------------------------------------------------------------------------
    def _batch(self, step: int) -> tuple[torch.Tensor, int]:
        starts, dropout_seed = sample_starts(self.s.seed, self.dist.rank, step, self.n_windows, self.plan.batch_size)
        if self.full_starts is not None:  # batch gradient descent: every window, every step (lm/train/data.py)
            return self.train_ids[self.full_starts.unsqueeze(1) + self.offsets], dropout_seed
        index = torch.from_numpy(starts).to(self.device).unsqueeze(1) + self.offsets  # [B, T+1]
        return self.train_ids[index], dropout_seed

    def _current_lr(self) -> float:
        progress = None
        if self.plan.minutes is not None:
            by_time = self._elapsed() / (self.plan.minutes * 60.0)
            by_step = self.step / self.plan.steps if self.plan.steps else 0.0
            progress = max(by_time, by_step)
        return lr_at(self.step, self.plan.lr, self.plan.warmup, self.plan.steps or 1, progress)

    def _state_json(self) -> dict[str, Any]:
        return {
            "settings": self.s.to_json(), "plan_steps": self.plan.steps, "step": self.step,
            "optimizer_name": self.s.optimizer,
            "elapsed": self._elapsed(), "tokens_seen": self.tokens_seen, "history": self.history,
            "best_loss": None if math.isinf(self.best_loss) else self.best_loss, "best_step": self.best_step,
            "last_valid": self.last_valid, "last_valid_bpc": self.last_valid_bpc,
            "world_size": self.dist.world_size, "model": self.plan.config(self.tokenizer.vocab_size).to_dict(),
        }

    def _save_resume(self) -> None:
        if self.dist.main:
            _save_resume(self.resume_dir, self.model, self.optimizer, self.best_tensors, self.tokenizer,
                         self._state_json())
            self._event("save", message=f"saved resume state at step {self.step}")
        self.last_save_step, self.last_save_time = self.step, time.perf_counter()

    def _meta(self, metrics: dict[str, Any], finished: bool) -> dict[str, Any]:
        return {
            "name": self.plan.name,
            "description": self.plan.describe(self.s, self.corpus.name),
            "corpus": {"name": self.corpus.name, "split": self.split.info},
            "training": {
                "method": "gradient", "family": self.plan.variant, "settings": self.s.to_json(),
                "steps": self.step, "planned_steps": self.plan.steps, "finished": finished,
                "tokens_seen": self.tokens_seen, "seconds": round(self._elapsed(), 2),
                "device": str(self.device), "world_size": self.dist.world_size, "bf16_autocast": self.bf16,
                "best_step": self.best_step,
                "best_valid_nats_per_token": None if math.isinf(self.best_loss) else round(self.best_loss, 5),
                "history": self.history,
                **({"adapted_from": self.base.name} if self.base is not None else {}),
            },
            "metrics": metrics,
        }

    def _sample_metrics(self) -> dict[str, Any]:
        bpc = self.best_loss * self.valid_tokens_per_char / math.log(2)
        return {"valid_bits_per_char": round(bpc, 4), "valid_nats_per_char": round(bpc * math.log(2), 4),
                "estimated_from_sample": True}

    def _write_best_checkpoint(self, final: bool, finished: bool) -> None:
        """Save the best weights so far as the checkpoint (final: with the full held-out metrics)."""
        config = self.plan.config(self.tokenizer.vocab_size)
        tensors = self.best_tensors if self.best_tensors is not None else self.model.state_tensors()
        best = build_model(config, {k: v.detach().cpu() for k, v in tensors.items()})
        best.eval()
        best.requires_grad_(False)
        if final:
            self._event("eval", message=N_("scoring the held-out text"))
            metrics = held_out_metrics(best.to(self.device), self.tokenizer, self.split.valid.text,
                                       max_chars=self.s.score_chars)
            metrics.update(score_test_split(best, self.tokenizer, self.split, self.s.score_chars))  # once, here
            if self.base is not None:
                self._event("eval", message=f"scoring {self.base.name} before and after fine-tuning")
                metrics["adaptation"] = adaptation_report(self.base, self.base_model.model.to(self.device), best,
                                                          self.tokenizer, self.split.valid.text, self.s.score_chars)
                self.base_model.model.cpu()
            best = best.cpu()
            metrics["valid_nats_per_token_sample"] = None if math.isinf(self.best_loss) else round(self.best_loss, 5)
        else:
            metrics = self._sample_metrics()
        self.meta = self._meta(metrics, finished)
        save_checkpoint(self.plan.directory, best, self.tokenizer, self.meta)
        self.best_model = best
        self.checkpoint_step = self.best_step

    def _eval_and_keep_best(self) -> None:
        loss = held_out_loss(self.model, self.eval_windows, self.plan.batch_size)
        self.last_valid = round(loss, 5)
        self.last_valid_bpc = round(loss * self.valid_tokens_per_char / math.log(2), 4)
        self.history["valid"].append([self.step, self.last_valid, self.last_valid_bpc])
        self._clock()
        if loss < self.best_loss:
            self.best_loss, self.best_step = loss, self.step
            self.best_tensors = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_tensors().items()}
        self._event("eval", valid_loss=self.last_valid, valid_bits_per_char=self.last_valid_bpc,
                    message=f"held-out {self.last_valid:.4f} nats/token", sample=self._sample())

    def _clock(self) -> None:
        """Record tokens seen and seconds trained at this step (a race's other x axes)."""
        point = [self.step, self.tokens_seen, round(self._elapsed(), 3)]
        if not self.history["clock"] or self.history["clock"][-1][0] != self.step:
            self.history["clock"].append(point)

    def _sample(self) -> str | None:
        """What the model writes now, kept in the history (once per step)."""
        if not self.s.sample_tokens or any(step == self.step for step, _ in self.history["samples"][-1:]):
            return None
        text = sample_text(self.model, self.tokenizer, self.s.sample_prompt, self.s.sample_tokens, self.s.seed)
        self.history["samples"].append([self.step, text])
        return text

    def _wait_if_paused(self) -> bool:
        """Hold the run between two steps while its control says so; True when it was paused."""
        gate = self.s.control
        if gate is None or not gate.paused:
            return False
        self._event("pause", message=f"paused at step {self.step}")
        self.paused_seconds += gate.wait(self.s.should_stop)
        self._event("resume", message=f"running from step {self.step}")
        return True

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        s, plan = self.s, self.plan
        saved = _read_resume(self.resume_dir) if s.resume else None
        if saved is not None:
            if saved["settings"]["family"] != s.family:
                raise LMError(f"{self.resume_dir.name} holds a {saved['settings']['family']} run, not {s.family}")
            if saved.get("optimizer_name", s.optimizer) != s.optimizer:  # torch would load it without a word
                raise LMError(f"{self.resume_dir.name} was trained with {saved['optimizer_name']}, not "
                              f"{s.optimizer}; resume with the same optimizer")
        self._load_data(saved)
        self._build(saved)
        if saved is not None:
            expected = plan.config(self.tokenizer.vocab_size).to_dict()
            if saved["model"] != expected:
                raise LMError(f"{self.resume_dir.name} holds a model of another shape; resume with the same "
                              "model settings or delete it to start over")
        elif self.dist.main and self.resume_dir.exists():  # a state of an earlier run, not asked for
            self._event("setup", message=f"starting over: removing {self.resume_dir.name} (use resume to continue)")
            shutil.rmtree(self.resume_dir, ignore_errors=True)
        if self.dist.main:  # half-written copies left by a run killed mid-save
            for leftover in self.resume_dir.parent.glob(f".{self.resume_dir.name}.saving-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        self._restore_counters(saved)
        self.meta: dict[str, Any] = {}
        self.best_model = None
        self.checkpoint_step = -1
        self.paused_seconds = 0.0
        self.t0 = time.perf_counter()
        self.last_save_step, self.last_save_time = self.step, self.t0
        self.lr = self._current_lr()
        if saved is not None:
            self._event("setup", message=f"resumed at step {self.step}")
        elif self.dist.main and self.s.sample_tokens:  # step 0: what the untrained (or base) model writes
            self._clock()
            self._event("eval", message=N_("sample at step 0"), sample=self._sample())
        windows = len(self.full_starts) if self.full_starts is not None else self.plan.batch_size
        tokens_per_step = windows * self.plan.context * self.dist.world_size
        window_t0, window_tokens = time.perf_counter(), 0
        loss_sum = torch.zeros((), device=self.device)
        loss_count = 0
        stopped = time_up = asked = False
        params = list(self.model.parameters())
        while not self._finished_by_steps():
            if not self.dist.enabled and (asked or _stop_requested(s)):  # alone: act on a request at once
                stopped = True
                break
            if not self.dist.enabled and self._wait_if_paused():
                window_t0, window_tokens = time.perf_counter(), 0  # the pause is no part of the speed
                continue  # look at the stop flag again before the next step
            self.lr = self._current_lr()
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr
            batch, dropout_seed = self._batch(self.step)
            self.optimizer.zero_grad(set_to_none=True)
            loss = forward_backward(self.net, batch, plan.batch_size, dropout_seed, self.device, bf16=self.bf16,
                                    dropout=plan.model_args.get("dropout", 0.0) > 0)
            if s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, s.grad_clip)
            self.optimizer.step()
            self.step += 1
            self.tokens_seen += tokens_per_step
            window_tokens += tokens_per_step
            loss_sum += loss.detach()
            loss_count += 1

            if self.step % s.log_every == 0 or self._finished_by_steps():
                # the one point where ranks talk outside DDP: they agree on the mean loss and on stopping, so
                # every rank leaves the loop at the same step (a clock or a signal seen by one rank is enough)
                over_time = plan.minutes is not None and self._elapsed() >= plan.minutes * 60.0
                summary = torch.tensor([float(loss_sum), float(loss_count),
                                        float(_stop_requested(s) or asked), float(over_time)])
                if self.dist.enabled:
                    import torch.distributed as dist

                    summary = summary.to(self.device)
                    dist.all_reduce(summary)
                    summary = summary.cpu()
                mean = float(summary[0]) / max(1.0, float(summary[1]))
                loss_sum.zero_()
                loss_count = 0
                now = time.perf_counter()
                tps = window_tokens / max(1e-9, now - window_t0)
                window_t0, window_tokens = now, 0
                self.history["train"].append([self.step, round(mean, 5)])
                self._clock()
                # a callback's stop request is acted on at once alone, at the next agreement point in a group
                asked = self._event("train", train_loss=mean, tokens_per_second=tps, lr=self.lr) or asked
                time_up = bool(summary[3] > 0)
                stopped = bool(summary[2] > 0) or (asked and not self.dist.enabled)
            if self.step % plan.eval_every == 0 and self.dist.main and not self._finished_by_steps():
                self._eval_and_keep_best()
                if s.control is not None:
                    s.control.evaluated()  # "run one evaluation interval" ends here
            if stopped or time_up:
                break
            due = (self.step - self.last_save_step >= plan.save_every
                   or time.perf_counter() - self.last_save_time >= s.save_minutes * 60.0)
            if due and not self._finished_by_steps():
                if self.dist.main:
                    self._maybe_write_intermediate_checkpoint()
                self._save_resume()
        finished = self._finished_by_steps() or time_up
        stopped = not finished
        if self.dist.main:
            self._eval_and_keep_best()
        if self.dist.main and self.step > 0:
            self._write_best_checkpoint(final=True, finished=finished)
            if finished and not s.keep_resume_state:
                shutil.rmtree(self.resume_dir, ignore_errors=True)
        if (not finished or s.keep_resume_state) and self.step > 0:
            self._save_resume()  # a stopped run continues with resume=True
        write_checksum(self.model, self.history, self.dist.rank, self.dist.world_size, self.step)
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()
        self._event("done", message=f"saved {plan.directory}" if self.step > 0 else N_("stopped before training"))
        best_model = self.best_model if self.best_model is not None else self.model.cpu().eval()
        return TrainResult(plan.name, plan.directory if self.step > 0 and self.dist.main else None, best_model,
                           self.tokenizer, self.meta, self.step, self._elapsed(), stopped, self.history)

    def _finished_by_steps(self) -> bool:
        return self.plan.steps is not None and self.step >= self.plan.steps

    def _maybe_write_intermediate_checkpoint(self) -> None:
        if self.best_tensors is not None and self.best_step != self.checkpoint_step:
            self._write_best_checkpoint(final=False, finished=False)
