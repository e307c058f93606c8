"""audiocraft 1.3.0's MAGNeT code run in torch: its modules loaded by file path, and the toy model of the goldens.

`load_magnet(tree)` loads `audiocraft/models/lm_magnet.py`, `solvers/magnet.py` and
`utils/utils.py` from an extracted audiocraft source tree with the heavy imports they
never use here (conditioners, flashy, omegaconf, the base LMModel and solver) replaced
by small stand-ins; `magnet_harness` wraps a logits function as a `MagnetLMModel`.
`toy_logits` is the deterministic model of the goldens and the benchmark, one
definition for torch and JAX: int32 arithmetic that neither framework can round
differently, scaled by a power of two, so both get bit-identical logits.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
import typing as tp

import torch

PRIME = 65521


def toy_logits(tokens: tp.Any, stage: tp.Any, cond: tp.Any, card: int, xp: tp.Any) -> tp.Any:
    """`tokens [B, K, T]` (ints, the mask token included), `stage` (int scalar), `cond [B]` (ints) ->
    float32 logits `[B, K, T, card]` in `[0, 8)`. `xp` is `torch` or `jax.numpy`."""
    torch_like = hasattr(xp, "from_numpy")
    batch, n_q, timesteps = tokens.shape
    weights = (xp.arange(n_q) + 1) * 7
    h = (tokens * weights[None, :, None]).sum(1) % PRIME  # [B, T]
    pad_one = xp.ones_like(h[:, :1])
    left = xp.concatenate([pad_one, h[:, :-1]], 1) if not torch_like else xp.cat([pad_one, h[:, :-1]], 1)
    right = xp.concatenate([h[:, 1:], pad_one * 2], 1) if not torch_like else xp.cat([h[:, 1:], pad_one * 2], 1)
    position = xp.arange(timesteps)[None, :]
    h = (h * 3 + left * 5 + right * 11 + position * 13 + stage * 17 + cond[:, None] * 19) % PRIME
    level = xp.arange(n_q)[None, :, None, None]
    code = xp.arange(card)[None, None, None, :]
    v = (h[:, None, :, None] * 31 + (level * card + code + 1) * 1009) % PRIME
    v = (v * ((v % 113) + 1)) % PRIME
    v = (v * 211 + h[:, None, :, None] + 7) % PRIME
    v = (v * ((v % 97) + 3)) % PRIME
    floats = v.float() if torch_like else v.astype(xp.float32)
    return floats / 8192.0


# ---------------------------------------------------------------------------
# audiocraft's modules with stand-ins for what these functions never run
# ---------------------------------------------------------------------------
class Condition:
    """A stand-in `ConditioningAttributes`: one int per example (0 is the null condition)."""

    def __init__(self, value: int):
        self.value = value


class NullConditions:
    """`ClassifierFreeGuidanceDropout(p=1.0)`: every condition becomes the null one."""

    def __init__(self, p: float):
        assert p == 1.0

    def __call__(self, conditions):
        return [Condition(0) for _ in conditions]


class ConditionProvider:
    def tokenize(self, conditions):
        return conditions

    def __call__(self, tokenized):
        return {"cond": torch.tensor([c.value for c in tokenized])}


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def load_magnet(source: tp.Any) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """audiocraft's `lm_magnet`, `solvers.magnet` and `utils.utils`, by file path, with stand-ins."""

    class LMModel(torch.nn.Module):
        @property
        def special_token_id(self) -> tp.Any:
            return self.card

        @property
        def num_codebooks(self) -> tp.Any:
            return self.n_q

    for package in ("audiocraft", "audiocraft.models", "audiocraft.utils", "audiocraft.modules", "audiocraft.solvers"):
        _module(package, __path__=[])
    _module("flashy", distrib=_module("flashy.distrib"))
    _module("omegaconf", DictConfig=dict)
    _module("einops", rearrange=lambda x, spec: x[:, None])  # only 'b -> b 1' is used
    _module(
        "audiocraft.modules.conditioners",
        ClassifierFreeGuidanceDropout=NullConditions,
        ConditioningAttributes=Condition,
        ConditionType=tuple,
        SegmentWithAttributes=object,
    )
    _module("audiocraft.models.lm", LMModel=LMModel)
    _module("audiocraft.solvers.builders", DatasetType=types.SimpleNamespace(SOUND="sound"))
    _module("audiocraft.solvers.musicgen", MusicGenSolver=object)
    loaded = []
    for name, path in (
        ("audiocraft.utils.utils", "audiocraft/utils/utils.py"),
        ("audiocraft.models.lm_magnet", "audiocraft/models/lm_magnet.py"),
        ("audiocraft.solvers.magnet", "audiocraft/solvers/magnet.py"),
    ):
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(source) / path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        loaded.append(module)
    sys.modules["audiocraft.utils"].utils = loaded[0]  # type: ignore[attr-defined]
    return loaded[1], loaded[2], loaded[0]


def magnet_harness(lm_magnet: types.ModuleType, n_q: int, card: int, span_len: int, cond_weight: int):
    """audiocraft's `MagnetLMModel` around the toy model (its transformer never built)."""

    class Toy(lm_magnet.MagnetLMModel):  # type: ignore[name-defined]
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.n_q, self.card, self.span_len, self._fsdp = n_q, card, span_len, None
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.condition_provider = ConditionProvider()
            self.inputs: list[torch.Tensor] = []

        def forward(self, sequence, conditions, condition_tensors, stage):
            self.inputs.append(sequence.clone())
            return toy_logits(sequence, stage, condition_tensors["cond"] * cond_weight, card, torch)

    return Toy().eval()
