"""Writes tests/goldens/magnet_1_3_0.npz from the genuine audiocraft 1.3.0 MAGNeT code.

Runs audiocraft's own `audiocraft/models/lm_magnet.py` (`MagnetLMModel._generate_magnet`,
`_generate_stage`, `_least_probable_span_masking`) and `audiocraft/solvers/magnet.py`
(`_calc_mean_maskrate_to_u_LUT`, `_spans_mask`, `_non_spans_mask`,
`_compute_cross_entropy_magnet`), loaded by file path with their heavy imports
(conditioners, flashy, omegaconf, the base LMModel and solver) replaced by small
stand-ins, since only torch is needed to run these functions. The model is the
deterministic toy of `torch_compat._magnet.toy_logits`, the same in torch and JAX.

Random numbers: a case that samples hands audiocraft's `utils.multinomial` the
uniforms `lm.magnet_generate` documents (made here with `jax.random` from the
case's seed) and draws by inverse CDF, as ours does; the training masks get
the draws `lm.magnet_mask` documents, through `torch.rand`. audiocraft's source
is never committed.

Usage:
  python tools/make_magnet_goldens.py                         # downloads the sdist with pip
  python tools/make_magnet_goldens.py --source path/to/audiocraft-1.3.0
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
import tempfile
import types
import typing as tp

import jax
import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools"), str(ROOT / "tests")]

from make_goldens import fetch_sdist_files  # noqa: E402

from torch_compat._magnet import Condition, load_magnet, magnet_harness  # noqa: E402

VERSION = "1.3.0"
OUT = ROOT / "tests" / "goldens" / "magnet_1_3_0.npz"
FILES = ("audiocraft/models/lm_magnet.py", "audiocraft/solvers/magnet.py", "audiocraft/utils/utils.py")


class Uniforms:
    """Patches `utils.multinomial`: iteration j draws by inverse CDF from `lm.magnet_generate`'s documented
    uniforms, `uniform(fold_in(fold_in(key, b), j), (T,))` for example b."""

    def __init__(self, utils: tp.Any, seed: int):
        self.utils, self.key, self.j = utils, jax.random.key(seed), 0
        self.original = utils.multinomial

    def __enter__(self):
        self.utils.multinomial = self
        return self

    def __exit__(self, *exc):
        self.utils.multinomial = self.original

    def __call__(self, probs: torch.Tensor, num_samples: int) -> torch.Tensor:
        batch, _, timesteps, _ = probs.shape
        u = np.stack(
            [
                np.asarray(
                    jax.random.uniform(jax.random.fold_in(jax.random.fold_in(self.key, b), self.j), (timesteps,))
                )
                for b in range(batch)
            ]
        )
        self.j += 1
        cdf = torch.cumsum(probs, dim=-1)
        x = torch.from_numpy(u)[:, None, :, None] * cdf[..., -1:]
        return (cdf <= x).sum(-1, keepdim=True).clamp(max=probs.shape[-1] - 1)


# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------
def generation_cases() -> list[dict]:
    cases: list[dict] = []
    base = dict(card=12, temp=3.0, top_k=0, top_p=0.0, anneal_temp=True, max_cfg=10.0, min_cfg=1.0)
    grid = [
        # K, T, prompt, span_len, arrangement, scoring, guidance, steps
        (1, 14, 0, 3, "nonoverlap", "max", True, [4]),
        (2, 17, 4, 3, "nonoverlap", "max", True, [5, 3]),
        (2, 17, 4, 3, "nonoverlap", "prod", False, [5, 3]),
        (4, 20, 0, 3, "nonoverlap", "prod", True, [6, 3, 2, 2]),
        (4, 20, 7, 3, "stride1", "max", True, [6, 3, 2, 2]),
        (2, 19, 5, 3, "stride1", "max", False, [7, 4]),
        (2, 16, 3, 1, "nonoverlap", "max", True, [5, 3]),
        (1, 15, 2, 1, "stride1", "max", False, [6]),
        (2, 18, 6, 3, "nonoverlap", "max", True, [5, 4]),
        (2, 22, 1, 4, "stride1", "prod", True, [8, 3]),
        (2, 22, 9, 4, "nonoverlap", "max", True, [8, 3]),
        (4, 24, 5, 2, "nonoverlap", "prod", False, [4, 3, 3, 2]),
    ]
    for i, (n_q, t, p, span, arrangement, scoring, guidance, steps) in enumerate(grid):
        for sampling in ("greedy", "top_p", "top_k", "full"):
            case = dict(
                base,
                n_q=n_q,
                timesteps=t,
                prompt=p,
                span_len=span,
                arrangement=arrangement,
                scoring=scoring,
                guidance=guidance,
                steps=steps,
                seed=100 * i + len(cases),
                batch=2,
            )
            case["use_sampling"] = sampling != "greedy"
            case["top_p"] = 0.9 if sampling == "top_p" else 0.0
            case["top_k"] = 5 if sampling == "top_k" else 0
            if sampling == "full":
                case["temp"], case["anneal_temp"], case["max_cfg"] = 1.5, False, 4.0
            cases.append(case)
    return cases


class StableOrder:
    """Pins the order of tied scores to the lowest index first: `Tensor.topk` and `torch.argsort` made stable.

    audiocraft re-masks with `scores.topk(k)` and `argsort(descending=True)`, whose order among equal scores
    is torch's unspecified one (libstdc++'s introselect on CPU; another on CUDA). Scores do tie: a confident
    code's probability rounds to 1.0, so `1 - max(prob)` is exactly 0 for several spans. The goldens hold
    audiocraft's codes both as they come and with this order pinned, which is ours.
    """

    def __enter__(self):
        self.topk, self.argsort = torch.Tensor.topk, torch.argsort
        original_argsort = self.argsort

        def topk(tensor, k, dim=-1):
            indices = original_argsort(tensor, dim=dim, descending=True, stable=True).narrow(dim, 0, k)
            return types.SimpleNamespace(values=tensor.gather(dim, indices), indices=indices)

        torch.Tensor.topk = topk  # type: ignore[method-assign, assignment]
        torch.argsort = lambda tensor, dim=-1, descending=False: original_argsort(  # type: ignore[assignment]
            tensor, dim=dim, descending=descending, stable=True
        )
        return self

    def __exit__(self, *exc):
        torch.Tensor.topk, torch.argsort = self.topk, self.argsort  # type: ignore[method-assign]


def run_generation(lm_magnet, utils, case: dict) -> dict:
    rng = np.random.default_rng(case["seed"])
    batch, n_q, card = case["batch"], case["n_q"], case["card"]
    prompt = rng.integers(0, card, (batch, n_q, case["prompt"]))
    cond = rng.integers(1, 50, batch)
    codes = run_magnet(lm_magnet, utils, case, prompt, cond)
    with StableOrder():
        stable = run_magnet(lm_magnet, utils, case, prompt, cond)
    return {"prompt": prompt.astype(np.int32), "cond": cond.astype(np.int32), "codes": codes, "stable": stable}


def run_magnet(lm_magnet, utils, case: dict, prompt: np.ndarray, cond: np.ndarray) -> np.ndarray:
    batch, n_q, card = case["batch"], case["n_q"], case["card"]
    model = magnet_harness(lm_magnet, n_q, card, case["span_len"], cond_weight=1 if case["guidance"] else 0)
    with Uniforms(utils, case["seed"]):
        out = model._generate_magnet(
            prompt=torch.from_numpy(prompt) if case["prompt"] else None,
            conditions=[Condition(int(c)) for c in cond],
            num_samples=batch,
            max_gen_len=case["timesteps"],
            use_sampling=case["use_sampling"],
            temp=case["temp"],
            top_k=case["top_k"],
            top_p=case["top_p"],
            max_cfg_coef=case["max_cfg"],
            min_cfg_coef=case["min_cfg"],
            decoding_steps=case["steps"],
            anneal_temp=case["anneal_temp"],
            span_scoring=case["scoring"],
            span_arrangement=case["arrangement"],
        )
    return out.numpy().astype(np.int32)


def schedule_cases() -> list[dict]:
    return [
        dict(timesteps=t, steps=steps, prompt=p, span_len=3)
        for t in (500, 1500)
        for steps in ([20, 10, 10, 10], [60, 10, 10, 10])
        for p in (0, 99)
    ]


def run_schedule(lm_magnet, case: dict) -> dict:
    """Per iteration: the masked positions the model sees in the stage's codebook, and the softmax input of a
    probe whose guided logit of code 0 is the coefficient (audiocraft's `w / t`, as float32)."""
    card, n_q = 2, 4
    model = magnet_harness(lm_magnet, n_q, card, case["span_len"], cond_weight=1)
    seen = []
    original = lm_magnet.torch

    class Probe(types.SimpleNamespace):
        def __getattr__(self, name):
            return getattr(original, name)

        @staticmethod
        def softmax(x, dim):
            seen.append(float(x[0, 0, 0, 0]))
            return original.softmax(x, dim=dim)

    def probe(sequence, conditions, condition_tensors, stage):
        model.inputs.append(sequence[:1, stage].clone())
        logits = torch.zeros(sequence.shape + (card,))
        logits[: sequence.shape[0] // 2, ..., 0] = 1.0  # conditional rows: 1 at code 0; null rows: 0
        return logits

    model.forward = probe
    lm_magnet.torch = Probe()
    try:
        prompt = torch.zeros((1, n_q, case["prompt"]), dtype=torch.long)
        model._generate_magnet(
            prompt=prompt if case["prompt"] else None,
            conditions=[Condition(1)],
            num_samples=1,
            max_gen_len=case["timesteps"],
            use_sampling=False,
            decoding_steps=case["steps"],
        )
    finally:
        lm_magnet.torch = original
    masked = np.asarray([int((x == card).sum()) for x in model.inputs], np.int32)
    rates = torch.cat([torch.cos(torch.linspace(0, 1, n) * math.pi * 0.5) for n in case["steps"]])
    return {"masked": masked, "scaled": np.asarray(seen, np.float32), "rate": rates.numpy()}


def lut_cases() -> list[tuple[int, int]]:
    return [(500, 3), (1500, 3), (50, 3), (10, 3), (30, 5), (200, 2)]


def run_lut(solver_module, timesteps: int, span_len: int) -> np.ndarray:
    solver = object.__new__(solver_module.MagnetSolver)
    solver.cfg = types.SimpleNamespace(masking=types.SimpleNamespace(span_len=span_len))
    return np.asarray(solver._calc_mean_maskrate_to_u_LUT(timesteps), np.int32)


def mask_cases() -> list[dict]:
    return [
        dict(batch=b, timesteps=t, span_len=s, segment=seg, seed=seed)
        for seed, (b, t, s, seg) in enumerate(
            [(4, 50, 3, 50), (3, 40, 1, 40), (5, 64, 4, 64), (2, 30, 3, 60), (6, 25, 2, 25)]
        )
    ]


def run_mask(solver_module, case: dict) -> dict:
    """`_get_mask` fed `lm.magnet_mask`'s documented draws: rate from `u`, the subset from `torch.rand`."""
    batch, timesteps, span_len = case["batch"], case["timesteps"], case["span_len"]
    _, k_rate, k_order = jax.random.split(jax.random.key(case["seed"]), 3)
    u = np.asarray(jax.random.uniform(k_rate, (batch,)))
    order = np.asarray(jax.random.uniform(k_order, (batch, timesteps)))
    assert all(len(set(row.tolist())) == timesteps for row in order), "tied draws: argsort order would differ"
    solver = object.__new__(solver_module.MagnetSolver)
    solver.cfg = types.SimpleNamespace(masking=types.SimpleNamespace(span_len=span_len))
    solver.mean_maskrate_to_u = torch.tensor(solver._calc_mean_maskrate_to_u_LUT(case["segment"]))
    original = solver_module.torch

    class Draws(types.SimpleNamespace):
        def __getattr__(self, name):
            return getattr(original, name)

        @staticmethod
        def rand(shape, device=None):
            return torch.from_numpy(order)

    rates = torch.cos(torch.from_numpy(u) * math.pi * 0.5)
    solver_module.torch = Draws()
    try:
        mask = solver._get_mask(rates, batch, timesteps, "cpu")
    finally:
        solver_module.torch = original
    return {"mask": mask.numpy()}


def loss_cases() -> list[dict]:
    return [dict(batch=3, n_q=4, timesteps=9, card=7, stage=s, seed=s) for s in range(4)] + [
        dict(batch=2, n_q=2, timesteps=6, card=5, stage=1, seed=9, empty=True)
    ]


def run_loss(solver_module, case: dict) -> dict:
    rng = np.random.default_rng(case["seed"])
    batch, n_q, timesteps, card = case["batch"], case["n_q"], case["timesteps"], case["card"]
    logits = rng.normal(size=(batch, n_q, timesteps, card)).astype(np.float32)
    codes = rng.integers(0, card, (batch, n_q, timesteps))
    stage_mask = rng.random((batch, timesteps)) < 0.5
    if case.get("empty"):
        stage_mask[:] = False
    lengths = rng.integers(0, timesteps + 1, batch)
    padding = np.arange(timesteps)[None, :] < lengths[:, None]
    loss_mask = np.zeros((batch, n_q, timesteps), bool)
    loss_mask[:, case["stage"]] = stage_mask & padding
    solver = object.__new__(solver_module.MagnetSolver)
    tensor = torch.from_numpy(logits).requires_grad_(True)
    ce = solver._compute_cross_entropy_magnet(
        tensor, torch.from_numpy(codes.copy()), torch.from_numpy(loss_mask), torch.full((1,), case["stage"])
    )
    grad = np.zeros_like(logits) if not ce.isfinite() else torch.autograd.grad(ce, tensor)[0].numpy()
    return {
        "logits": logits,
        "codes": codes.astype(np.int32),
        "mask": stage_mask,
        "lengths": lengths.astype(np.int32),
        "loss": np.float32(ce.item()),
        "grad": grad,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=pathlib.Path, help="an extracted audiocraft 1.3.0 source tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or fetch_sdist_files(pathlib.Path(tmp), FILES)
        lm_magnet, solver_module, utils = load_magnet(source)
        arrays: dict[str, np.ndarray] = {}
        index: dict[str, list] = {"generate": [], "schedule": [], "lut": [], "mask": [], "loss": []}
        for i, case in enumerate(generation_cases()):
            for name, value in run_generation(lm_magnet, utils, case).items():
                arrays[f"generate/{i}/{name}"] = value
            index["generate"].append(case)
        for i, case in enumerate(schedule_cases()):
            for name, value in run_schedule(lm_magnet, case).items():
                arrays[f"schedule/{i}/{name}"] = value
            index["schedule"].append(case)
        for i, (timesteps, span_len) in enumerate(lut_cases()):
            arrays[f"lut/{i}"] = run_lut(solver_module, timesteps, span_len)
            index["lut"].append([timesteps, span_len])
        for i, case in enumerate(mask_cases()):
            arrays[f"mask/{i}/mask"] = run_mask(solver_module, case)["mask"]
            index["mask"].append(case)
        for i, case in enumerate(loss_cases()):
            for name, value in run_loss(solver_module, case).items():
                arrays[f"loss/{i}/{name}"] = np.asarray(value)
            index["loss"].append(case)
    arrays["index"] = np.asarray(json.dumps({"audiocraft": VERSION, "torch": torch.__version__, **index}))
    np.savez_compressed(OUT, **arrays)
    ties = sum(
        not np.array_equal(arrays[f"generate/{i}/codes"], arrays[f"generate/{i}/stable"])
        for i in range(len(index["generate"]))
    )
    print(
        f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(index['generate'])} generation cases, "
        f"{ties} where torch's order of tied scores changes the codes)"
    )


if __name__ == "__main__":
    main()
