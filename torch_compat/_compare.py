"""Runs jax_patterns and a torch path on the same inputs and reports the first mismatch."""

from __future__ import annotations

import dataclasses
import types
import typing as tp

import numpy as np
import torch

import jax_patterns as jp
from torch_compat import _reference
from torch_compat._convert import to_audiocraft


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One comparison: which provider, length, op and flags, against what, and the outcome."""

    provider: str
    timesteps: int
    op: str
    keep_only_valid_steps: bool
    against: str
    mismatch: str | None

    @property
    def ok(self) -> bool:
        return self.mismatch is None


def first_mismatch(name: str, ours: tp.Any, theirs: tp.Any) -> str | None:
    """Describes the first position where two arrays differ (NaN equals NaN), or None."""
    a, b = np.asarray(ours), np.asarray(theirs)
    if a.shape != b.shape:
        return f"{name}: shape {a.shape} (jax) != {b.shape} (torch)"
    if a.dtype == bool or b.dtype == bool:
        same = a == b
    else:
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
    if same.all():
        return None
    pos = tuple(int(i) for i in np.argwhere(~same)[0])
    return f"{name}{list(pos)}: jax={a[pos].item()!r} torch={b[pos].item()!r}"


def _diff(ours: tuple, theirs: tuple) -> str | None:
    for name, a, b in zip(("values", "indexes", "mask"), ours, theirs):
        found = first_mismatch(name, a, to_torch_np(b))
        if found:
            return found
    return None


def to_torch_np(x: tp.Any) -> np.ndarray:
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _ops(pattern: jp.Pattern, kovs: bool, rng: np.random.Generator, batch: int, card: int):
    """Yields `(op name, jax result, callable giving the torch-side result for a pattern-like)`."""
    n_q = pattern.n_q
    steps = len(pattern.valid_layout if kovs else pattern.layout)
    z = rng.integers(0, card, (batch, n_q, pattern.timesteps)).astype(np.int32)
    s = rng.integers(0, card, (batch, n_q, steps)).astype(np.int32)
    logits = rng.standard_normal((batch, card, n_q, steps)).astype(np.float32)
    nan = float("nan")
    yield (
        "build",
        pattern.build_pattern_sequence(z, card, kovs),
        lambda p, m: m.build_pattern_sequence(p, torch.from_numpy(z).long(), card, kovs),
    )
    yield (
        "revert",
        pattern.revert_pattern_sequence(s, card, kovs),
        lambda p, m: m.revert_pattern_sequence(p, torch.from_numpy(s).long(), card, kovs),
    )
    yield (
        "logits",
        pattern.revert_pattern_logits(logits, nan, kovs),
        lambda p, m: m.revert_pattern_logits(p, torch.from_numpy(logits), nan, kovs),
    )
    last = pattern.revert_pattern_logits(np.moveaxis(logits, 1, -1), nan, kovs, card_axis=-1)
    moved = (np.moveaxis(np.asarray(last[0]), -1, 1), last[1], last[2])
    yield "logits[card_axis=-1]", moved, lambda p, m: m.revert_pattern_logits(p, torch.from_numpy(logits), nan, kovs)


class _PatternMethods:
    """Adapts an audiocraft `Pattern` to the `_reference` call shape `(pattern, x, special, kovs)`."""

    @staticmethod
    def build_pattern_sequence(p, x, special, kovs):
        return p.build_pattern_sequence(x, special, kovs)

    @staticmethod
    def revert_pattern_sequence(p, x, special, kovs):
        return p.revert_pattern_sequence(x, special, kovs)

    @staticmethod
    def revert_pattern_logits(p, x, special, kovs):
        return p.revert_pattern_logits(x, special, kovs)


def compare(
    provider: jp.CodebooksPatternProvider,
    timesteps: tp.Sequence[int] = (0, 1, 5, 16),
    *,
    batch: int = 2,
    card: int = 5,
    seed: int = 0,
    audiocraft: tp.Any = None,
) -> list[CheckResult]:
    """Compares every op of `provider`'s patterns between jax_patterns and torch.

    Each op runs with both `keep_only_valid_steps` on seeded random inputs, in
    jax_patterns and in the torch reference path (`torch_compat`), and, when
    `audiocraft` is given (its `codebooks_patterns` module or an equivalent
    audiocraft provider), in the genuine audiocraft code too. Lengths that
    audiocraft cannot handle (T=0 or an empty sequence) are compared with the
    reference path only.

    Returns:
      One `CheckResult` per comparison; `mismatch` names the first differing
      field and position with both values.
    """
    name = repr(provider)
    if isinstance(audiocraft, types.ModuleType):
        audiocraft = to_audiocraft(provider, audiocraft)
    results = []
    for t in timesteps:
        pattern = provider.get_pattern(t)
        ac_pattern = audiocraft.get_pattern(t) if audiocraft is not None and t > 0 else None
        for kovs in (False, True):
            rng = np.random.default_rng(seed)
            steps = len(pattern.valid_layout if kovs else pattern.layout)
            for op, ours, run_torch in _ops(pattern, kovs, rng, batch, card):
                theirs = run_torch(pattern, _reference)
                results.append(CheckResult(name, t, op, kovs, "torch reference", _diff(ours, theirs)))
                if ac_pattern is not None and steps > 0:
                    theirs = run_torch(ac_pattern, _PatternMethods)
                    results.append(CheckResult(name, t, op, kovs, "audiocraft", _diff(ours, theirs)))
    return results


def format_table(results: tp.Sequence[CheckResult]) -> str:
    """A plain-text pass/fail table, one row per comparison."""
    header = ("provider", "T", "op", "valid_only", "against", "result")
    rows = [
        (
            r.provider,
            str(r.timesteps),
            r.op,
            str(r.keep_only_valid_steps),
            r.against,
            "PASS" if r.ok else f"FAIL {r.mismatch}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)
