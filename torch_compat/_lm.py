"""Torch transcriptions of audiocraft's uses of a pattern (compute_predictions, cross entropy, generate).

Written from audiocraft's semantics (`LMModel.compute_predictions`,
`MusicGenSolver._compute_cross_entropy`, `LMModel.generate`), on the torch
reference path, as the other side of the equivalence tests and benchmarks.
"""

from __future__ import annotations

import typing as tp

import torch
import torch.nn.functional as F

from jax_patterns import Pattern
from torch_compat import _reference as reference

UNKNOWN = -1


def compute_predictions(
    model: tp.Callable, codes: torch.Tensor, pattern: Pattern, special_token: int, keep_only_valid_steps: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """`model(seq [B, K, S]) -> [B, K, S, card]`; returns `(logits [B, K, T, card], mask [B, K, T])`."""
    batch = codes.shape[0]
    seq, _, _ = reference.build_pattern_sequence(pattern, codes, special_token, keep_only_valid_steps)
    logits = model(seq).permute(0, 3, 1, 2)  # [B, card, K, S]
    logits, _, mask = reference.revert_pattern_logits(pattern, logits, float("nan"), keep_only_valid_steps)
    return logits.permute(0, 2, 3, 1), mask[None].expand(batch, -1, -1)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor):
    """Per codebook: mean cross entropy over valid `(b, t)`; then the mean over codebooks."""
    n_q = logits.shape[1]
    total = torch.zeros((), device=logits.device)
    per_codebook = []
    for k in range(n_q):
        logits_k = logits[:, k].reshape(-1, logits.shape[-1])
        targets_k = targets[:, k].reshape(-1)
        mask_k = mask[:, k].reshape(-1)
        ce_k = F.cross_entropy(logits_k[mask_k], targets_k[mask_k])
        total = total + ce_k
        per_codebook.append(ce_k.detach())
    return total / n_q, per_codebook


def generate(
    model: tp.Callable, pattern: Pattern, prompt: torch.Tensor, special_token: int, cfg_coef: float | None = None
) -> torch.Tensor:
    """Greedy generation, eager, as audiocraft's loop does it (the model recomputes the whole prefix).

    `model(seq [B, K, n]) -> logits [B, K, n, card]` for every step of the prefix.
    """
    batch, n_q, prompt_len = prompt.shape
    codes = torch.full((batch, n_q, pattern.timesteps), UNKNOWN, dtype=torch.long)
    codes[..., :prompt_len] = prompt
    seq, _, mask = reference.build_pattern_sequence(pattern, codes, special_token)
    start = pattern.get_first_step_with_timesteps(prompt_len)
    assert start is not None
    for offset in range(start, seq.shape[-1]):
        prefix = seq[..., :offset]
        assert not (prefix == UNKNOWN).any()
        if cfg_coef is None:
            logits = model(prefix)[:, :, -1]
        else:
            both = model(torch.cat([prefix, prefix], dim=0))[:, :, -1]
            cond, uncond = both.split(batch, dim=0)
            logits = uncond + (cond - uncond) * cfg_coef
        token = torch.argmax(logits, dim=-1, keepdim=True)
        token[~mask[None, :, offset : offset + 1].expand(batch, -1, -1)] = special_token
        current = seq[..., offset : offset + 1]
        seq[..., offset : offset + 1] = torch.where(current == UNKNOWN, token, current)
    assert not (seq == UNKNOWN).any()
    out, _, _ = reference.revert_pattern_sequence(pattern, seq, UNKNOWN)
    return out[..., : pattern.timesteps]
