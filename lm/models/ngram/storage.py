"""N-gram checkpoints: the count tensors a model saves, and their checks when a checkpoint is loaded.

Format 2 (written since the compact checkpoint; a `format` tensor holds [2]): `meta` = [V, order, tokens] and,
per order j, `level{j}.keys` (sorted context id * V + next token) and `level{j}.counts`, each in the narrowest
integer type that holds its values (keys int32 where they fit, counts uint8, int16 or int32): everything else
(the context keys, the continuation counts, the statistics) is derived when the model is loaded
(`lm.models.ngram.counts.derive_orders`). The character 7-gram of the zoo is 13.9 MB this way instead of
53.5 MB.

Format 1 (no `format` tensor; checkpoints saved before): the same tables plus `context{m}.keys` and
`level{j}.cont`, all int64. Still loaded; the saved context keys are checked against the derived ones.
"""

from __future__ import annotations

import numpy as np
import torch

from lm.errors import LMError
from lm.models.ngram.counts import MAX_ORDER, _Tables

FORMAT_VERSION = 2
_COUNT_TYPES = (np.uint8, np.int16, np.int32, np.int64)  # the first that holds the largest count is stored


def _narrow(array: np.ndarray, types) -> torch.Tensor:
    top = int(array.max()) if array.size else 0
    dtype = next(t for t in types if top <= np.iinfo(t).max)
    return torch.from_numpy(array.astype(dtype, copy=True))


def checkpoint_tensors(primary: dict[str, np.ndarray], order: int) -> dict[str, torch.Tensor]:
    """The format-2 tensors of orders 1..order of count tables `primary` (`lm.models.ngram.counts._count`)."""
    meta = primary["meta"]
    out = {"format": torch.tensor([FORMAT_VERSION], dtype=torch.int64),
           "meta": torch.tensor([int(meta[0]), order, int(meta[2])], dtype=torch.int64)}
    for j in range(1, order + 1):
        out[f"level{j}.keys"] = _narrow(primary[f"level{j}.keys"], (np.int32, np.int64))
        out[f"level{j}.counts"] = _narrow(primary[f"level{j}.counts"], _COUNT_TYPES)
    return out


def format1_tensors(primary: dict[str, np.ndarray], order: int) -> dict[str, torch.Tensor]:
    """The format-1 tensors of the same tables (every table, int64): what checkpoints held before format 2,
    for the tests that old checkpoints still load and the benchmark's size column."""
    meta = primary["meta"]
    names = ([f"level{j}.{part}" for j in range(1, order + 1) for part in ("keys", "counts")]
             + [f"level{j}.cont" for j in range(1, order)] + [f"context{j}.keys" for j in range(1, order)])
    out = {k: torch.from_numpy(np.array(primary[k], dtype=np.int64)) for k in names}
    out["meta"] = torch.tensor([int(meta[0]), order, int(meta[2])], dtype=torch.int64)
    return out


def tables_from_tensors(vocab_size: int, tensors: dict[str, torch.Tensor]) -> _Tables:
    """Check and adopt saved count tensors of either format (LMError on anything inconsistent)."""
    if not isinstance(tensors, dict) or "meta" not in tensors:
        raise LMError("n-gram model file has no 'meta' tensor")
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or tensor.dim() != 1:
            raise LMError(f"n-gram tensor {name!r} must be a 1-D tensor")
        if tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool:
            raise LMError(f"n-gram tensor {name!r} must hold integers, not {tensor.dtype}")
        arrays[name] = tensor.detach().cpu().numpy().astype(np.int64, copy=True)
    version = arrays.pop("format", None)
    if version is not None and (version.shape != (1,) or int(version[0]) != FORMAT_VERSION):
        raise LMError(f"n-gram tensors have format {version.tolist()}; this version reads formats 1 and "
                      f"{FORMAT_VERSION}")
    meta = arrays["meta"]
    if meta.shape != (3,):
        raise LMError("n-gram 'meta' tensor must hold [vocab_size, order, tokens]")
    V, K, _ = (int(v) for v in meta)
    if V != vocab_size:
        raise LMError(f"n-gram tensors are for a vocabulary of {V}, the config says {vocab_size}")
    if not 1 <= K <= MAX_ORDER:
        raise LMError(f"n-gram tensors have an invalid order {K}")
    expected = {"meta"} | {f"level{j}.{part}" for j in range(1, K + 1) for part in ("keys", "counts")}
    if version is None:  # format 1 also stored what format 2 derives
        expected |= {f"context{m}.keys" for m in range(1, K)} | {f"level{j}.cont" for j in range(1, K)}
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise LMError(f"n-gram tensors do not match order {K}: missing {missing or 'none'}, "
                      f"unexpected {extra or 'none'}")

    def check_keys(name: str, keys: np.ndarray, upper: int) -> None:
        if keys.size and (keys[0] < 0 or keys[-1] >= upper or np.any(np.diff(keys) <= 0)):
            raise LMError(f"n-gram tensor {name!r} is not sorted or out of range")

    num_grams = [1]  # distinct (j-1)-grams: the contexts of order j
    for j in range(1, K + 1):
        keys, counts = arrays[f"level{j}.keys"], arrays[f"level{j}.counts"]
        check_keys(f"level{j}.keys", keys, num_grams[j - 1] * V)
        if counts.shape != keys.shape or (counts.size and counts.min() < 1):
            raise LMError(f"n-gram tensor 'level{j}.counts' does not match its keys")
        if version is None and j < K:
            context = arrays[f"context{j}.keys"]
            check_keys(f"context{j}.keys", context, num_grams[j - 1] * V)
            if context.size != keys.size:
                raise LMError(f"n-gram order {j} table has {keys.size} entries but {context.size} contexts")
            cont = arrays[f"level{j}.cont"]
            if cont.shape != keys.shape or (cont.size and cont.min() < 0):
                raise LMError(f"n-gram tensor 'level{j}.cont' does not match its keys")
        num_grams.append(keys.size)
    if int(arrays["level1.counts"].sum()) != int(meta[2]):  # unigram counts add up to the tokens
        raise LMError("n-gram unigram counts do not add up to the token count in 'meta'")
    return _Tables(arrays)


__all__ = ["FORMAT_VERSION", "checkpoint_tensors", "format1_tensors", "tables_from_tensors"]
