"""audiocraft 1.3.0's MusicGen and MAGNeT language models run in torch, loaded by file path from the release sdist.

`load_lm(tree)` loads the genuine `models/lm.py`, `models/lm_magnet.py`,
`modules/transformer.py`, `modules/streaming.py`, `modules/rope.py`,
`modules/activations.py`, `modules/codebooks_patterns.py` and `utils/utils.py`
from an extracted audiocraft source tree (never committed). What their
forward and generation never run is replaced by stand-ins: `xformers.ops`
(`unbind` is `torch.unbind`; `LowerTriangularMask` is only tested for being
not None by the torch backend), `flashy`, `omegaconf`, and the conditioners: a
`ConditionFuser` for `cross` conditions, the guidance dropout (p = 1 gives the
null condition), and a provider whose one conditioner is T5's last step,
`output_proj(states) * mask` (audiocraft's `T5Conditioner.forward`), on
precomputed text-encoder states. `einops` must be installed.

`build_lm(modules, cfg, text_dim)` makes an `LMModel` / `MagnetLMModel` from a
config dict as audiocraft's `builders.get_lm_model` does.
"""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import types
import typing as tp

import torch
from torch import nn

FILES = (
    "audiocraft/utils/utils.py",
    "audiocraft/modules/streaming.py",
    "audiocraft/modules/rope.py",
    "audiocraft/modules/activations.py",
    "audiocraft/modules/codebooks_patterns.py",
    "audiocraft/modules/transformer.py",
    "audiocraft/models/lm.py",
    "audiocraft/models/lm_magnet.py",
)


class Text:
    """A stand-in `ConditioningAttributes`: one example's text-encoder states `[S, D]` and mask `[S]` (None: null)."""

    def __init__(self, states: torch.Tensor | None, mask: torch.Tensor | None = None):
        self.states, self.mask = states, mask


class GuidanceDropout:
    """`ClassifierFreeGuidanceDropout`: p = 1 makes every condition the null one; in eval nothing is dropped."""

    def __init__(self, p: float = 0.0, seed: int = 1234):
        self.p = p

    def __call__(self, conditions: list) -> list:
        return [Text(None) for _ in conditions] if self.p == 1.0 else conditions


class NoDropout:
    """`AttributeDropout` in eval mode."""

    def __init__(self, p: tp.Any = None, active_on_eval: bool = False, seed: int = 1234):
        pass

    def __call__(self, conditions: list) -> list:
        return conditions


class TextConditioner(nn.Module):
    """T5Conditioner after its T5: `output_proj(states) * mask` (audiocraft's `T5Conditioner.forward`)."""

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.output_proj = nn.Linear(text_dim, dim)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        states, mask = inputs
        embeds = self.output_proj(states.to(self.output_proj.weight))
        return embeds * mask.unsqueeze(-1), mask


class ConditionProvider(nn.Module):
    """`ConditioningProvider` of one text condition: tokenize stacks the states (zeros for the null condition)."""

    def __init__(self, name: str, text_dim: int, dim: int, length: int):
        super().__init__()
        self.name, self.text_dim, self.length = name, text_dim, length
        self.conditioners = nn.ModuleDict({name: TextConditioner(text_dim, dim)})

    def tokenize(self, conditions: list) -> tuple[torch.Tensor, torch.Tensor]:
        states = torch.stack(
            [c.states if c.states is not None else torch.zeros(self.length, self.text_dim) for c in conditions]
        )
        mask = torch.stack(
            [c.mask if c.mask is not None else torch.zeros(self.length, dtype=torch.long) for c in conditions]
        )
        return states, mask

    def forward(self, tokenized: tuple[torch.Tensor, torch.Tensor]) -> dict:
        return {self.name: self.conditioners[self.name](tokenized)}


class ConditionFuser(nn.Module):
    """`ConditionFuser` with `cross` conditions only: the input is unchanged, the conditions are concatenated."""

    def __init__(self, fuse2cond: dict, **kwargs: tp.Any):
        super().__init__()
        assert not any(fuse2cond.get(op) for op in ("sum", "prepend", "input_interpolate")), fuse2cond
        self.fuse2cond = fuse2cond
        self.cond2fuse = {name: "cross" for name in fuse2cond.get("cross", [])}

    def forward(self, input_: torch.Tensor, conditions: dict) -> tuple[torch.Tensor, tp.Any]:
        cross = [conditions[name][0] for name in self.fuse2cond.get("cross", []) if name in conditions]
        return input_, (torch.cat(cross, dim=1) if cross else None)


class LowerTriangularMask:
    """`xformers.ops.LowerTriangularMask`: the torch backend only tests it for not being None."""


def _module(name: str, **attrs: tp.Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def _no_xformers(*args: tp.Any, **kwargs: tp.Any) -> tp.Any:
    raise RuntimeError("xformers' memory_efficient_attention is not available: run with the torch backend")


def load_lm(source: tp.Any) -> types.SimpleNamespace:
    """audiocraft's language-model modules from an extracted source tree, with the stand-ins (see the module doc).

    Returns a namespace with `lm`, `lm_magnet`, `transformer`, `patterns` (the modules) and `utils`.
    """
    for package in ("audiocraft", "audiocraft.models", "audiocraft.utils", "audiocraft.modules"):
        _module(package, __path__=[])
    _module("flashy", distrib=_module("flashy.distrib"))
    _module("omegaconf", DictConfig=dict, OmegaConf=types.SimpleNamespace())
    ops = _module("xformers.ops", unbind=torch.unbind, LowerTriangularMask=LowerTriangularMask)
    ops.memory_efficient_attention = _no_xformers  # type: ignore[attr-defined]
    _module("xformers", __path__=[], ops=ops)
    _module(
        "audiocraft.modules.conditioners",
        ConditionFuser=ConditionFuser,
        ClassifierFreeGuidanceDropout=GuidanceDropout,
        AttributeDropout=NoDropout,
        ConditioningProvider=ConditionProvider,
        ConditioningAttributes=Text,
        ConditionType=tuple,
    )
    loaded = {}
    for path in FILES:
        name = path[: -len(".py")].replace("/", ".")
        spec = importlib.util.spec_from_file_location(name, pathlib.Path(source) / path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        parent, _, leaf = name.rpartition(".")
        setattr(sys.modules[parent], leaf, module)
        loaded[leaf] = module
    return types.SimpleNamespace(
        lm=loaded["lm"],
        lm_magnet=loaded["lm_magnet"],
        transformer=loaded["transformer"],
        patterns=loaded["codebooks_patterns"],
        utils=loaded["utils"],
    )


PATTERNS = {
    "parallel": "ParallelPatternProvider",
    "delay": "DelayedPatternProvider",
    "unroll": "UnrolledPatternProvider",
    "coarse_first": "CoarseFirstPattern",
    "musiclm": "MusicLMPattern",
}


def build_lm(modules: types.SimpleNamespace, cfg: dict, *, text_dim: int, condition_len: int) -> nn.Module:
    """An `LMModel` (or `MagnetLMModel` for `lm_model: transformer_lm_magnet`) from a plain config dict.

    As audiocraft's `builders.get_lm_model`: `transformer_lm` keyword arguments,
    the pattern of `codebooks_pattern`, guidance settings, and `cross_attention`
    forced on when the fuser has a `cross` condition (here a text condition of
    `condition_len` steps of `text_dim` features).
    """
    kwargs = dict(cfg["transformer_lm"])
    n_q = kwargs["n_q"]
    pattern_cfg = cfg["codebooks_pattern"]
    name = pattern_cfg["modeling"]
    provider = getattr(modules.patterns, PATTERNS[name])(n_q, **(pattern_cfg.get(name) or {}))
    fuser = ConditionFuser(cfg["fuser"])
    cross = cfg["fuser"].get("cross", [])
    condition = ConditionProvider(cross[0] if cross else "none", text_dim, kwargs["dim"], condition_len)
    if cross:
        kwargs["cross_attention"] = True
    guidance = cfg["classifier_free_guidance"]
    klass = modules.lm_magnet.MagnetLMModel if cfg["lm_model"] == "transformer_lm_magnet" else modules.lm.LMModel
    return klass(
        pattern_provider=provider,
        condition_provider=condition,
        fuser=fuser,
        cfg_dropout=guidance["training_dropout"],
        cfg_coef=guidance["inference_coef"],
        attribute_dropout={},
        dtype=torch.float32,
        device="cpu",
        **kwargs,
    )
