"""One options object for `generate`, `stream` and `Engine`: the decode's token ids, sampling and step conventions.

`DecodeOptions` is checked once, when it is made. The three entry points take
it as `options=`, or its fields (and `Sampling`'s: `temp`, `top_k`, `top_p`,
`cfg_coef`) as keywords, which `resolve` turns into one; never both.
"""

from __future__ import annotations

import dataclasses
import typing as tp

import numpy as np

from jax_patterns._checks import check_flag, check_int_token
from jax_patterns.lm._policies import POLICIES, TokenPolicy
from jax_patterns.lm._sampling import Sampling


def token_ids(special_token: tp.Any, eos_token: tp.Any, fill_after: tp.Any) -> tuple[int, int | None, int | None]:
    """The decode's token ids checked: ints int32 codes hold, `eos_token` a non-negative code other than special.

    Raises:
      TypeError: an id that is not an int (4.7, None for `special_token`, a string).
      ValueError: outside int32; a negative `eos_token`, or one equal to `special_token`.
    """
    special_token = check_int_token("special_token", special_token)
    if eos_token is not None:
        if isinstance(eos_token, bool) or not isinstance(eos_token, (int, np.integer)) or eos_token < 0:
            raise ValueError(f"`eos_token` must be a non-negative int (a code of codebook 0), got {eos_token!r}")
        eos_token = check_int_token("eos_token", eos_token)
        if eos_token == special_token:
            raise ValueError(f"`eos_token`={eos_token} equals `special_token`; EOS must be a code the model samples")
    if fill_after is not None:
        fill_after = check_int_token("fill_after", fill_after)
    return special_token, eos_token, fill_after


@dataclasses.dataclass(frozen=True, eq=False)
class DecodeOptions:
    """How `generate`, `stream` and `Engine` decode: token ids, sampling, and the step function's conventions.

    Attributes:
      special_token: the special token id (audiocraft: `card`).
      eos_token: optional codebook-0 code that ends an example.
      fill_after: a second fill token (bos/pad, bos/eos conventions): the
        positions without a code get `special_token` before their codebook's
        first position in the layout and `fill_after` after it.
      use_sampling: sample (static) rather than take the argmax (greedy, the default).
      sampling: temperature, top-k, top-p and the guidance coefficient
        (`lm.Sampling`; traced values: new values compile nothing).
        `cfg_coef=None` turns guidance off; under `Engine` these are the
        requests' defaults.
      step_info: call `step_fn(state, tokens, info)` with an `lm.StepInfo`.
      step_returns: `"logits"` (sample from them) or `"tokens"` (a two-level
        decoder returns int tokens `[B, K]`; no guidance).

    Raises:
      TypeError / ValueError: a bad id, flag, `step_returns` or `sampling`,
        guidance with `step_returns="tokens"`.

    Example:
      >>> from jax_patterns import lm
      >>> options = lm.DecodeOptions(special_token=2048, use_sampling=True, sampling=lm.Sampling(temp=0.8, top_k=250))
      >>> options.eos_token is None
      True
    """

    special_token: int
    eos_token: int | None = None
    fill_after: int | None = None
    use_sampling: bool = False
    sampling: Sampling = Sampling()
    step_info: bool = False
    step_returns: str = "logits"

    def __post_init__(self) -> None:
        ids = token_ids(self.special_token, self.eos_token, self.fill_after)
        for name, value in zip(("special_token", "eos_token", "fill_after"), ids):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "use_sampling", check_flag("use_sampling", self.use_sampling))
        object.__setattr__(self, "step_info", check_flag("step_info", self.step_info))
        if not isinstance(self.step_returns, str) or self.step_returns not in POLICIES:
            raise ValueError(f"`step_returns` must be 'logits' or 'tokens', got {self.step_returns!r}")
        if not isinstance(self.sampling, Sampling):
            raise TypeError(f"`sampling` must be an lm.Sampling, got {type(self.sampling).__name__}")
        if not self.policy.guidance and self.sampling.cfg_coef is not None:
            raise ValueError(
                "`cfg_coef` mixes logits; a step function with step_returns='tokens' applies guidance itself"
            )

    @property
    def policy(self) -> TokenPolicy:
        """What makes the step's tokens of the step function's output (`step_returns`)."""
        return POLICIES[self.step_returns]

    @property
    def guidance(self) -> bool:
        """Whether classifier-free guidance is on (`sampling.cfg_coef` is not None)."""
        return self.sampling.cfg_coef is not None


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(DecodeOptions))
SAMPLING_NAMES = frozenset(Sampling._fields)


def resolve(options: tp.Any, keywords: dict[str, tp.Any], where: str) -> DecodeOptions:
    """The `DecodeOptions` of a call: `options`, or one made of the keywords (never both, no unknown keyword).

    Raises:
      TypeError: an unknown keyword, `options` of another type, no `special_token`.
      ValueError: keywords beside `options`, or sampling keywords beside `sampling=`.
    """
    unknown = sorted(set(keywords) - OPTION_NAMES - SAMPLING_NAMES)
    if unknown:
        raise TypeError(f"{where}() got unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    if options is not None:
        if not isinstance(options, DecodeOptions):
            raise TypeError(f"`options` must be an lm.DecodeOptions, got {type(options).__name__}")
        if keywords:
            raise ValueError(
                f"pass the decode settings either as `options=` or as keywords, not both (got {', '.join(keywords)} "
                "too); use dataclasses.replace(options, ...) to change one"
            )
        return options
    rest = dict(keywords)
    loose = {name: rest.pop(name) for name in Sampling._fields if name in rest}
    if rest.get("sampling") is not None and loose:
        raise ValueError(
            f"pass the sampling settings either as `sampling=` or as keywords, not both (got {', '.join(loose)} too)"
        )
    if "special_token" not in rest:
        raise TypeError(f"{where}() needs `special_token` (or `options=lm.DecodeOptions(...)`)")
    sampling = rest.pop("sampling", None)
    return DecodeOptions(sampling=Sampling(**loose) if sampling is None else sampling, **rest)
