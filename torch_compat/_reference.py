"""The reference PyTorch path: audiocraft's scatter-index algorithm, written anew.

Index tables are filled by walking the layout coordinate by coordinate (as
audiocraft does, on the host), then applied by appending the special token to
the flattened input and gathering. Results equal audiocraft 1.3.0's; tests and
benchmarks use this path as the torch side of every comparison.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from jax_patterns import Pattern


def get_pattern(provider, timesteps: int) -> Pattern:
    """The pattern built the way audiocraft builds it: the plain-Python layout, validated step by step.

    Used as the reference side of the construction benchmark (jax_patterns builds
    the same pattern from vectorised coordinates and never walks the layout).
    """
    layout = provider.reference_layout(timesteps)
    omit = getattr(provider, "empty_initial", 0) < 0
    return Pattern(layout, timesteps, provider.n_q, omit_special_token=omit)


def _ref_layout(pattern: Pattern, keep_only_valid_steps: bool):
    return pattern.valid_layout if keep_only_valid_steps else pattern.layout


@functools.lru_cache(maxsize=256)
def build_indexes(pattern: Pattern, timesteps: int, keep_only_valid_steps: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """`[K, S]` int64 indexes into `z` flattened to `[K * T]` (`K * T`: special) and the bool mask."""
    layout = _ref_layout(pattern, keep_only_valid_steps)
    n_q = pattern.n_q
    indexes = np.full((n_q, len(layout)), n_q * timesteps, dtype=np.int64)
    mask = np.zeros((n_q, len(layout)), dtype=bool)
    for step, coords in enumerate(layout):
        for t, q in coords:
            if t < timesteps:
                indexes[q, step] = q * timesteps + t
                mask[q, step] = True
    return torch.from_numpy(indexes), torch.from_numpy(mask)


@functools.lru_cache(maxsize=256)
def revert_indexes(
    pattern: Pattern, sequence_steps: int, keep_only_valid_steps: bool, model_output: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """`[K, T]` int64 indexes into the sequence flattened to `[K * S]` (`K * S`: special) and the mask."""
    layout = _ref_layout(pattern, keep_only_valid_steps)
    if model_output and pattern.starts_with_special_token():
        layout = layout[1:]
    n_q, timesteps = pattern.n_q, pattern.timesteps
    indexes = np.full((n_q, timesteps), n_q * sequence_steps, dtype=np.int64)
    mask = np.zeros((n_q, timesteps), dtype=bool)
    for step, coords in enumerate(layout[:sequence_steps]):
        for t, q in coords:
            if t < timesteps:
                indexes[q, t] = q * sequence_steps + step
                mask[q, t] = True
    return torch.from_numpy(indexes), torch.from_numpy(mask)


@functools.lru_cache(maxsize=512)
def _on_device(indexes: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The index table on `device`, cached (audiocraft keeps its tables on the data's device)."""
    return indexes.reshape(-1).to(device)


def _gather_with_special(flat: torch.Tensor, indexes: torch.Tensor, special_token) -> torch.Tensor:
    fill = torch.full((*flat.shape[:-1], 1), special_token, dtype=flat.dtype, device=flat.device)
    return torch.cat([flat, fill], dim=-1)[..., _on_device(indexes, flat.device)]


def build_pattern_sequence(pattern: Pattern, z: torch.Tensor, special_token, keep_only_valid_steps: bool = False):
    """Reference `build_pattern_sequence`: `z` `[B, K, T]` -> `(values [B, K, S], indexes, mask)`."""
    batch, n_q, timesteps = z.shape
    if n_q != pattern.n_q or timesteps > pattern.timesteps:
        raise ValueError(f"z of shape {tuple(z.shape)} does not fit {pattern}")
    indexes, mask = build_indexes(pattern, timesteps, keep_only_valid_steps)
    values = _gather_with_special(z.reshape(batch, n_q * timesteps), indexes, special_token)
    return values.reshape(batch, n_q, -1), indexes, mask


def revert_pattern_sequence(pattern: Pattern, s: torch.Tensor, special_token, keep_only_valid_steps: bool = False):
    """Reference `revert_pattern_sequence`: `s` `[B, K, S]` -> `(values [B, K, T], indexes, mask)`."""
    batch, n_q, steps = s.shape
    if n_q != pattern.n_q or steps > len(_ref_layout(pattern, keep_only_valid_steps)):
        raise ValueError(f"s of shape {tuple(s.shape)} does not fit {pattern}")
    indexes, mask = revert_indexes(pattern, steps, keep_only_valid_steps, False)
    values = _gather_with_special(s.reshape(batch, n_q * steps), indexes, special_token)
    return values.reshape(batch, n_q, -1), indexes, mask


def revert_pattern_logits(pattern: Pattern, logits: torch.Tensor, special_token, keep_only_valid_steps: bool = False):
    """Reference `revert_pattern_logits`: `[B, card, K, S]` -> `(values [B, card, K, T], indexes, mask)`."""
    batch, card, n_q, steps = logits.shape
    if n_q != pattern.n_q or steps > len(_ref_layout(pattern, keep_only_valid_steps)):
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not fit {pattern}")
    indexes, mask = revert_indexes(pattern, steps, keep_only_valid_steps, True)
    values = _gather_with_special(logits.reshape(batch, card, n_q * steps), indexes, special_token)
    return values.reshape(batch, card, n_q, -1), indexes, mask
