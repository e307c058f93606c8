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
    not_comparable: str | None = None  # why the other side could not run (audiocraft's own limits)

    @property
    def ok(self) -> bool:
        return self.mismatch is None

    @property
    def status(self) -> str:
        if self.not_comparable:
            return f"N/A ({self.not_comparable})"
        return "PASS" if self.ok else f"FAIL {self.mismatch}"


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
    reference path only, and reported against audiocraft as `N/A` rows
    (counted as skipped).

    Returns:
      One `CheckResult` per comparison; `mismatch` names the first differing
      field and position with both values.
    """
    name = repr(provider)
    cannot = None  # audiocraft cannot build this configuration (e.g. CoarseFirstPattern(1): max([]))
    if isinstance(audiocraft, types.ModuleType):
        try:
            audiocraft = to_audiocraft(provider, audiocraft)
        except Exception as err:  # noqa: BLE001 - audiocraft's own failure is a row, not a crash
            cannot = f"audiocraft cannot build this configuration: {type(err).__name__}: {err}"
    results = []
    for t in timesteps:
        pattern = provider.get_pattern(t)
        ac_pattern, ac_error = None, cannot
        if audiocraft is not None and cannot is None and t > 0:
            try:
                ac_pattern = audiocraft.get_pattern(t)
            except Exception as err:  # noqa: BLE001 - as above
                ac_error = f"audiocraft cannot build this configuration: {type(err).__name__}: {err}"
        for kovs in (False, True):
            rng = np.random.default_rng(seed)
            steps = len(pattern.valid_layout if kovs else pattern.layout)
            for op, ours, run_torch in _ops(pattern, kovs, rng, batch, card):
                theirs = run_torch(pattern, _reference)
                results.append(CheckResult(name, t, op, kovs, "torch reference", _diff(ours, theirs)))
                if audiocraft is not None and ac_error is not None and t > 0:
                    results.append(CheckResult(name, t, op, kovs, "audiocraft", None, ac_error))
                elif audiocraft is not None and (t == 0 or steps == 0):  # reported, never dropped
                    why = "audiocraft crashes on T=0" if t == 0 else "audiocraft crashes on an empty sequence"
                    results.append(CheckResult(name, t, op, kovs, "audiocraft", None, why))
                elif ac_pattern is not None:
                    try:
                        theirs = run_torch(ac_pattern, _PatternMethods)
                    except Exception as err:  # noqa: BLE001 - as above
                        note = f"audiocraft fails here: {type(err).__name__}: {err}"
                        results.append(CheckResult(name, t, op, kovs, "audiocraft", None, note))
                        continue
                    results.append(CheckResult(name, t, op, kovs, "audiocraft", _diff(ours, theirs)))
    return results


def format_table(results: tp.Sequence[CheckResult], verbose: bool = False) -> str:
    """A plain-text report: one header per provider, compact rows, a one-line summary.

    By default a row per (T, against) with its count of passing comparisons and
    any failure spelled out; `verbose` gives one row per comparison.
    """
    lines: list[str] = []
    for provider in dict.fromkeys(r.provider for r in results):
        lines.append(provider)
        mine = [r for r in results if r.provider == provider]
        rows: list[tuple[str, ...]]
        if verbose:
            rows = [
                (f"T={r.timesteps}", r.op, f"valid_only={r.keep_only_valid_steps}", r.against, r.status) for r in mine
            ]
        else:
            rows = []
            for key in dict.fromkeys((r.timesteps, r.against) for r in mine):
                group = [r for r in mine if (r.timesteps, r.against) == key]
                bad = [r for r in group if not r.ok]
                not_run = [r for r in group if r.not_comparable]
                status = not_run[0].status if not_run else f"PASS {len(group)}/{len(group)}"
                if bad:
                    first = bad[0]
                    status = f"FAIL {len(bad)}/{len(group)}: {first.op} valid_only={first.keep_only_valid_steps}: "
                    status += str(first.mismatch)
                rows.append((f"T={key[0]}", f"vs {key[1]}", status))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))] if rows else []
        lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    failed = sum(not r.ok for r in results)
    skipped = sum(bool(r.not_comparable) for r in results)
    summary = f"{len(results) - failed - skipped} passed, {failed} failed"
    lines.append(summary + (f", {skipped} skipped" if skipped else ""))
    return "\n".join(lines)
