"""The public-API fuzz's argument table: one valid call of every public callable, with each argument's kind.

`TABLE` maps a public name (`jax_patterns.pack`, `jax_patterns.Pattern.build_pattern_sequence`,
`jax_patterns.lm.Engine.submit`, ...) to a function that builds its `Call` (built on first use: models and engines
are made only when their entry runs). `EXEMPT` names the few public callables that are not fuzzed, with the reason.
`test_fuzz.py` fails for a public callable that is in neither (so the table is complete by construction).

Shapes are tiny and the valid values shared, so that most calls are host-side checks and the compiled programs
are reused between examples.
"""

from __future__ import annotations

import functools
import types
import typing as tp

import numpy as np
from fuzz import OK, RAISE, Anything, Array, Call, Choice, Flag, Int, Key, Obj, Real, Seq

import jax_patterns as jp

TABLE: dict[str, tp.Callable[[], Call]] = {}
EXEMPT: dict[str, str] = {
    "jax_patterns.PatternLayout": "a type alias (`Sequence[Sequence[LayoutCoord]]`), not a function",
    "jax_patterns.LengthRule": "an abstract base class (a family's rule is `provider.length_rule()`)",
    "jax_patterns.LengthRule.shape": "the hook a rule implements; the library calls it with checked int64 lengths",
    "jax_patterns.LengthRule.to_full": "the hook a rule implements; called inside the library's own programs",
    "jax_patterns.LengthRule.from_full": "the hook a rule implements; called inside the library's own programs",
}

N_Q_MAX = 46340
"""The largest `n_q` a provider takes: a pattern of K codebooks holds at least K * K int32 indexes."""

CARD = 8
SPECIAL = CARD
CODES = np.array([[[1, 2, 3, 4], [5, 6, 7, 0]]], np.int32)  # [B=1, K=2, T=4]


def entry(*names: str) -> tp.Callable[[tp.Callable[[], Call]], tp.Callable[[], Call]]:
    def register(build: tp.Callable[[], Call]) -> tp.Callable[[], Call]:
        for name in names:
            TABLE[name] = build
        return build

    return register


@functools.cache
def call_of(name: str) -> Call:
    return TABLE[name]()


def provider() -> jp.DelayedPatternProvider:
    return jp.DelayedPatternProvider(2)


@functools.cache
def pattern() -> jp.Pattern:
    return provider().get_pattern(4)


@functools.cache
def sequence() -> np.ndarray:
    return np.asarray(pattern().build_pattern_sequence(CODES, SPECIAL)[0])


def codes(valid: tp.Any = CODES, below: int = CARD, special: int | None = SPECIAL, **kw: tp.Any) -> Array:
    """Integer codes in `[0, below)`: an int64 `2**32 + special` must not pass as the special token. Codes of
    another length than the per-example `lengths` may be refused naming `lengths` (the two disagree)."""
    kw.setdefault("names", ["lengths"])
    return Array(valid, "int", elem=Int(0, 0, below - 1), wrap=special, **kw)


def lengths(valid: tp.Any = None, timesteps: int = 4, batch: int = 1, **kw: tp.Any) -> Array:
    """Per-example lengths in `[0, timesteps]` (None: the default, every example full)."""
    value = np.full((batch,), timesteps, np.int32) if valid is None else valid
    kw.setdefault("empty", RAISE)
    return Array(value, "int", elem=Int(0, 0, timesteps), optional=True, **kw)


def token(valid: int = SPECIAL, **kw: tp.Any) -> Int:
    """A token id that int32 codes can hold."""
    return Int(valid, -(2**31), 2**31 - 1, **kw)


def flag(valid: bool = False, **kw: tp.Any) -> Flag:
    return Flag(valid, **kw)


def side(**kw: tp.Any) -> Choice:
    return Choice("right", ("right", "left"), **kw)


def n_q(valid: int = 2) -> Int:
    return Int(valid, 1, N_Q_MAX)


# ---------------------------------------------------------------------------
# Providers (each family: constructor, get_pattern, reference_layout, length_rule, audiocraft converters)
# ---------------------------------------------------------------------------
class FakeAudiocraft:
    """audiocraft's `codebooks_patterns` module, by its attributes: each class records its arguments."""

    class Pattern:
        def starts_with_special_token(self) -> bool:
            return True

    def __getattr__(self, name: str) -> tp.Any:
        return lambda *args, **kwargs: (name, args, tuple(sorted(kwargs.items())))


def unrolled_audiocraft() -> tp.Any:
    group = types.SimpleNamespace
    return types.SimpleNamespace(
        n_q=3, _flattened_codebooks={0: group(codebooks=[0], delay=0), 1: group(codebooks=[1, 2], delay=1)}
    )


FAMILY_CALLS: dict[str, tuple[tp.Callable[[], tp.Any], dict[str, tp.Callable[[], tp.Any]], tp.Any]]
FAMILY_CALLS = {
    # name: (a valid provider, its constructor's arguments, audiocraft's provider by its attributes)
    "DelayedPatternProvider": (
        lambda: jp.DelayedPatternProvider(2, [0, 1], 1, 1),
        {
            "n_q": lambda: n_q(),
            "delays": lambda: Seq([0, 1], Int(0, 0), optional=True),
            "flatten_first": lambda: Int(1, 0),
            "empty_initial": lambda: Int(1, -(2**31)),
            "any_order": lambda: flag(),
        },
        types.SimpleNamespace(n_q=2, delays=[0, 1], flatten_first=1, empty_initial=1),
    ),
    "ParallelPatternProvider": (
        lambda: jp.ParallelPatternProvider(2, 1),
        {"n_q": lambda: n_q(), "empty_initial": lambda: Int(1, -(2**31))},
        types.SimpleNamespace(n_q=2, empty_initial=1),
    ),
    "UnrolledPatternProvider": (
        lambda: jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 1, 1]),
        {
            "n_q": lambda: n_q(3),
            "flattening": lambda: Seq([0, 1, 1], Int(0, 0), optional=True),
            "delays": lambda: Seq([0, 1, 1], Int(0, 0), optional=True),
        },
        unrolled_audiocraft(),
    ),
    "CoarseFirstPattern": (
        lambda: jp.CoarseFirstPattern(3, [0, 1]),
        {"n_q": lambda: n_q(3), "delays": lambda: Seq([0, 1], Int(0, 0), optional=True)},
        types.SimpleNamespace(n_q=3, delays=[0, 1]),
    ),
    "VALLEPattern": (
        lambda: jp.VALLEPattern(3, [0, 1]),
        {"n_q": lambda: n_q(3), "delays": lambda: Seq([0, 1], Int(0, 0), optional=True)},
        types.SimpleNamespace(n_q=3, delays=[0, 1]),
    ),
    "MusicLMPattern": (
        lambda: jp.MusicLMPattern(4, 2),
        {"n_q": lambda: n_q(4), "group_by": lambda: Int(2, 1)},
        types.SimpleNamespace(n_q=4, group_by=2),
    ),
}


class UserProvider(jp.CodebooksPatternProvider):
    """A user's provider: only `get_pattern` (the base class checks `timesteps` and caches)."""

    def get_pattern(self, timesteps: int) -> jp.Pattern:
        return jp.DelayedPatternProvider(self.n_q).get_pattern(timesteps)


def _family_entries(name: str) -> None:
    make, ctor_args, theirs = FAMILY_CALLS[name]
    cls = getattr(jp, name)
    prefix = f"jax_patterns.{name}"
    TABLE[prefix] = lambda: Call(cls, **{k: v() for k, v in ctor_args.items()})
    TABLE[f"{prefix}.get_pattern"] = lambda: Call(make().get_pattern, timesteps=Int(3, 0))
    TABLE[f"{prefix}.reference_layout"] = lambda: Call(make().reference_layout, timesteps=Int(3, 0))
    TABLE[f"{prefix}.length_rule"] = lambda: Call(make().length_rule)
    TABLE[f"{prefix}.from_audiocraft"] = lambda: Call(cls.from_audiocraft, obj=Obj(theirs))
    TABLE[f"{prefix}.to_audiocraft"] = lambda: Call(make().to_audiocraft, module=Obj(FakeAudiocraft()))


for _name in FAMILY_CALLS:
    _family_entries(_name)

TABLE["jax_patterns.UnrolledPatternProvider.num_virtual_steps"] = lambda: Call(
    jp.UnrolledPatternProvider(3, [0, 1, 1], [0, 1, 1]).num_virtual_steps, timesteps=Int(3, 0)
)


@entry("jax_patterns.CodebooksPatternProvider")
def _() -> Call:
    return Call(lambda **kw: UserProvider(**kw).get_pattern(3), n_q=n_q(), cached=flag(True))


@entry("jax_patterns.CodebooksPatternProvider.get_pattern")
def _() -> Call:
    return Call(UserProvider(2).get_pattern, timesteps=Int(3, 0))


@entry("jax_patterns.CodebooksPatternProvider.length_rule")
def _() -> Call:
    return Call(UserProvider(2).length_rule)


def refusal(fn: tp.Callable) -> tp.Callable:
    """A call that must raise TypeError for every argument (the base class has no audiocraft counterpart)."""

    def call(**kw: tp.Any) -> str:
        try:
            fn(**kw)
        except TypeError as err:
            return str(err)
        raise AssertionError(f"{fn} returned")

    return call


@entry("jax_patterns.CodebooksPatternProvider.from_audiocraft")
def _() -> Call:
    return Call(refusal(UserProvider.from_audiocraft), obj=Anything(types.SimpleNamespace(n_q=2)))


@entry("jax_patterns.CodebooksPatternProvider.to_audiocraft")
def _() -> Call:
    return Call(refusal(UserProvider(2).to_audiocraft), module=Anything(FakeAudiocraft()))


# ---------------------------------------------------------------------------
# Length rules (a family's `length_rule()`)
# ---------------------------------------------------------------------------
def rule() -> tp.Any:
    return jp.DelayedPatternProvider(2, [0, 1], 1, 1).length_rule()


@entry("jax_patterns.LengthRule.num_steps")
def _() -> Call:
    return Call(rule().num_steps, lengths=Array(np.array([3, 4]), elem=Int(0, 0), ranks=(0, 1, 2), empty=OK))


@entry("jax_patterns.LengthRule.starts_with_special")
def _() -> Call:
    return Call(rule().starts_with_special, lengths=Array(np.array([0, 4]), elem=Int(0, 0), ranks=(0, 1, 2)))


@entry("jax_patterns.LengthRule.ref_steps")
def _() -> Call:
    return Call(
        rule().ref_steps,
        lengths=Array(np.array([3, 4]), elem=Int(0, 0), ranks=(0, 1, 2)),
        keep_only_valid_steps=flag(True),
    )


# ---------------------------------------------------------------------------
# Pattern
# ---------------------------------------------------------------------------
LAYOUT = [[], [jp.LayoutCoord(0, 0)], [jp.LayoutCoord(1, 0), jp.LayoutCoord(0, 1)], [jp.LayoutCoord(1, 1)]]


@entry("jax_patterns.Pattern")
def _() -> Call:
    return Call(
        jp.Pattern,
        layout=Seq(LAYOUT, Anything(None), lengths=lambda n: n >= 1),
        timesteps=Int(2, 0),
        n_q=n_q(),
        omit_special_token=flag(),
    )


@entry("jax_patterns.LayoutCoord")
def _() -> Call:
    def build(t: tp.Any, q: tp.Any) -> jp.Pattern:
        return jp.Pattern([[], [jp.LayoutCoord(t, q)]], 1, 2)

    # t >= timesteps is valid (audiocraft's layouts reach past T by their delays; such a code is never read)
    return Call(build, t=Int(0, 0, names=["layout"]), q=Int(1, 0, 1, names=["layout", "q="]))


@entry("jax_patterns.Pattern.from_coords")
def _() -> Call:
    steps, ts, qs = pattern().coords
    return Call(
        jp.Pattern.from_coords,
        coords=Obj((steps, ts, qs, len(pattern())), wrong=[(steps, ts, qs, 2**40), (steps[::-1], ts, qs, 6)]),
        timesteps=Int(4, 0),
        n_q=n_q(),
        omit_special_token=flag(),
        provider=Obj(None, provider(), optional=True),
        validate=flag(True),
    )


@entry("jax_patterns.Pattern.with_provider")
def _() -> Call:
    return Call(lambda provider: pattern().with_provider(provider).provider, provider=Anything(provider()))


@entry("jax_patterns.Pattern.derived")
def _() -> Call:
    return Call(
        lambda name, make: jp.DelayedPatternProvider(2).get_pattern(2).derived(name, make),
        name=Anything("table"),
        make=Obj(len, accept=callable, names=["make"]),
    )


@entry("jax_patterns.Pattern.starts_with_special_token")
def _() -> Call:
    return Call(pattern().starts_with_special_token)


for _method in ("get_sequence_coords_with_timestep", "get_steps_with_timestep", "get_first_step_with_timesteps"):
    TABLE[f"jax_patterns.Pattern.{_method}"] = functools.partial(
        lambda method: Call(getattr(pattern(), method), t=Int(2, 0, 4), q=Int(1, 0, 1, optional=True)), _method
    )


@entry("jax_patterns.Pattern.build_pattern_sequence")
def _() -> Call:
    return Call(
        pattern().build_pattern_sequence,
        z=Array(
            CODES, "any", ranks=range(2, 6), empty=OK, shapes=lambda s: s[-2] == 2 and s[-1] <= 4, names=["lengths"]
        ),
        special_token=token(),
        keep_only_valid_steps=flag(),
        lengths=lengths(),
        fill_after=token(9, optional=True),
        padding_side=side(),
    )


@entry("jax_patterns.Pattern.revert_pattern_sequence")
def _() -> Call:
    return Call(
        pattern().revert_pattern_sequence,
        s=Array(sequence(), "any", ranks=range(2, 6), shapes=lambda s: s[-2] == 2 and s[-1] <= 6, names=["lengths"]),
        special_token=token(),
        keep_only_valid_steps=flag(),
        lengths=lengths(),
        padding_side=side(),
    )


@entry("jax_patterns.Pattern.revert_pattern_logits")
def _() -> Call:
    logits = np.arange(2 * 6 * 3, dtype=np.float32).reshape(1, 2, 6, 3)
    return Call(
        pattern().revert_pattern_logits,
        logits=Array(logits, "any", ranks=range(3, 6), shapes=lambda s: s[-3] == 2 and s[-2] <= 6, names=["lengths"]),
        special_token=Real(float("nan"), nan=True),
        keep_only_valid_steps=flag(),
        card_axis=Int(-1, -4, 3, names=["logits"]),
        lengths=lengths(),
        padding_side=side(),
    )


@entry("jax_patterns.Pattern.logit_steps")
def _() -> Call:
    return Call(
        pattern().logit_steps,
        keep_only_valid_steps=flag(),
        lengths=lengths(ranks=(0, 1, 2), empty=OK),
        padding_side=side(),
    )


def flat_pattern() -> jp.Pattern:
    return jp.DelayedPatternProvider(2, [0, 0], flatten_first=1 << 20, empty_initial=-1).get_pattern(3)


@entry("jax_patterns.Pattern.to_stream")
def _() -> Call:
    seq = np.asarray(flat_pattern().build_pattern_sequence(CODES[..., :3], -1)[0])
    return Call(
        flat_pattern().to_stream,
        seq=Array(seq, elem=Int(0, -1, CARD - 1), ranks=range(2, 5), forbid=(), wrap=-1),
        offsets=Seq([0, 100], Int(0, 0)),
        special_token=token(-1),
        keep_only_valid_steps=flag(),
        card=Int(CARD, 1, optional=True),
    )


@entry("jax_patterns.Pattern.from_stream")
def _() -> Call:
    stream = np.asarray([[1, 105, 2, 106, 3, 107]], np.int32)
    return Call(
        flat_pattern().from_stream,
        stream=Array(stream, elem=Int(0, -1, 107), ranks=range(1, 4)),
        offsets=Seq([0, 100], Int(0, 0)),
        special_token=token(-1),
        keep_only_valid_steps=flag(),
        card=Int(CARD, 1, optional=True),
    )


# ---------------------------------------------------------------------------
# Packing, checks, plotting
# ---------------------------------------------------------------------------
EXAMPLE = CODES[0]  # [K=2, L=4]


def packed() -> jp.Packed:
    return jp.pack([EXAMPLE, EXAMPLE[:, :2]], provider(), row_steps=12, special_token=SPECIAL)


@entry("jax_patterns.pack")
def _() -> Call:
    return Call(
        jp.pack,
        examples=Seq(
            [EXAMPLE, EXAMPLE[:, :2]],
            codes(  # any int32 code but the special token (pack takes no card), any length >= 1
                EXAMPLE,
                2**31,
                names=["examples"],
                shapes=lambda s: s[0] == EXAMPLE.shape[0] and s[1] >= 1,
                forbid=[SPECIAL],
            ),
            lengths=lambda n: n >= 0,
        ),
        provider=Obj(provider(), names=["provider"]),
        row_steps=Int(12, 1),
        special_token=token(),
        rows=Int(2, 0, optional=True),
        method=Choice("first-fit", ("first-fit", "best-fit")),
        max_segments=Int(2, 1, optional=True),
        keep_only_valid_steps=flag(True),
    )


@entry("jax_patterns.Packed")
def _() -> Call:
    p = packed()
    return Call(
        lambda **kw: jp.unpack(kw["tokens"], jp.Packed(**kw)),
        tokens=Array(p.tokens),
        targets=Array(p.targets),
        segment_ids=Array(p.segment_ids),
        positions=Array(p.positions),
        placements=Obj(p.placements),
        provider=Obj(p.provider),
        keep_only_valid_steps=flag(True),
    )


@entry("jax_patterns.segment")
def _() -> Call:
    return Call(
        jp.segment,
        codes=codes(EXAMPLE, 2**31, empty=RAISE, forbid=[SPECIAL]),  # segment takes no card: any int32 code but special
        provider=Obj(provider()),
        special_token=token(),
        keep_only_valid_steps=flag(True),
    )


@entry("jax_patterns.segment_steps")
def _() -> Call:
    return Call(jp.segment_steps, provider=Obj(provider()), length=Int(4, 0), keep_only_valid_steps=flag(True))


@entry("jax_patterns.plan_rows")
def _() -> Call:
    return Call(
        jp.plan_rows,
        steps=Seq([4, 5, 3], Int(4, 1, 8), lengths=lambda n: n >= 0),
        row_steps=Int(8, 1),
        method=Choice("first-fit", ("first-fit", "best-fit")),
    )


@entry("jax_patterns.unpack")
def _() -> Call:
    p = packed()
    return Call(
        jp.unpack,
        sequence=Array(p.tokens, "any", ranks=range(3, 6), shapes=lambda s: False),
        packed=Obj(p),
        special_token=token(-1),
        model_output=flag(),
        return_mask=flag(),
    )


@entry("jax_patterns.check_lengths")
def _() -> Call:
    return Call(
        jp.check_lengths,
        lengths=Array(np.array([1, 4]), elem=Int(0, 0, 4), ranks=range(0, 4)),
        timesteps=Int(4, 0, names=["T_max"]),
    )


def close_figure(ax: tp.Any) -> tp.Any:
    import matplotlib.pyplot as plt

    image = [t.get_text() for t in ax.texts], ax.get_title()
    plt.close(ax.figure)
    return image


@entry("jax_patterns.plot")
def _() -> Call:
    import matplotlib

    matplotlib.use("Agg")
    return Call(
        jp.plot,
        close_figure,
        pattern_or_provider=Obj(provider(), pattern()),
        timesteps=Int(4, 0, optional=True),
        ax=Obj(None, optional=True),
        keep_only_valid_steps=flag(),
        max_steps=Int(64, 1),
        title=Obj("T", accept=lambda v: isinstance(v, str), optional=True),
        annotate=Flag(True, optional=True),
    )


# ---------------------------------------------------------------------------
# lm: generation, streaming, serving
# ---------------------------------------------------------------------------
EXEMPT.update(
    {
        "jax_patterns.lm.StepModel": "a Protocol: the user implements it (`step_fn_of` checks a model against it)",
        "jax_patterns.lm.StepModel.init_cache": "a Protocol method: the user's code",
        "jax_patterns.lm.StepModel.decode": "a Protocol method: the user's code",
        "jax_patterns.lm.ConditionedStepModel": "a Protocol: the user implements it (`condition_fn_of` checks it)",
        "jax_patterns.lm.ConditionedStepModel.init_cache": "a Protocol method: the user's code",
        "jax_patterns.lm.ConditionedStepModel.decode": "a Protocol method: the user's code",
        "jax_patterns.lm.ConditionedStepModel.condition": "a Protocol method: the user's code",
        "jax_patterns.lm.Generated": "a result type (`generate` returns it; nothing takes it)",
        "jax_patterns.lm.StepInfo": "a result type (the decode hands it to the step function; nothing takes it)",
        "jax_patterns.lm.Stream": "made by `lm.stream` only (its entry consumes one)",
    }
)

import jax  # noqa: E402 - the lm entries need jax; the pattern entries above do not
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from jax_patterns import lm  # noqa: E402

KEY = jax.random.key(0)


def float_dtype(d: tp.Any) -> bool:
    """float32 or bfloat16, as a dtype, a scalar type or its name."""
    if not isinstance(d, (str, type, np.dtype)):
        return False
    try:
        return np.dtype(d).name in ("float32", "bfloat16")
    except (TypeError, ValueError, SyntaxError):  # numpy reads a string as a format: "01" is a SyntaxError
        return False


PROMPT = np.array([[[3], [5]]], np.int32)  # [B=1, K=2, T0=1]


def toy_step(state: tp.Any, tokens: jax.Array, info: tp.Any = None) -> tuple[jax.Array, tp.Any]:
    """Logits favouring the last token + 1: a step function whose output depends on its input (and takes `info`)."""
    return jax.nn.one_hot((tokens[:, :, -1] + 1) % CARD, CARD) * 4.0, state


def other_step(state: tp.Any, tokens: jax.Array) -> tuple[jax.Array, tp.Any]:
    return jax.nn.one_hot((tokens[:, :, -1] + 2) % CARD, CARD) * 4.0, state


def decode_settings(n: int = 1) -> dict[str, tp.Any]:
    """The settings `generate`, `stream` and `Engine` take as keywords, sampling on."""
    return dict(
        special_token=token(),
        eos_token=Int(None, 0, optional=True),
        fill_after=token(None, optional=True),
        use_sampling=flag(True),
        temp=Real(1.0, 0.0, batch=n),
        top_k=Int(0, 0, batch=n),
        top_p=Real(0.0, 0.0, 1.0, batch=n),
        cfg_coef=Real(None, optional=True, batch=n),
        step_info=flag(False),
        step_returns=Choice("logits", ("logits", "tokens")),
    )


def generation(fn: tp.Callable, post: tp.Any = None, **extra: tp.Any) -> Call:
    return Call(
        fn,
        post,
        step_fn=Obj(toy_step, other_step),
        state=Anything(0),
        pattern=Obj(pattern(), jp.DelayedPatternProvider(2).get_pattern(3)),
        prompt=codes(PROMPT, below=2**31, forbid=(SPECIAL,), empty=OK),
        options=Obj(None, optional=True),
        key=Key(KEY, batch=1, optional=True),
        prompt_lengths=lengths(np.array([1]), timesteps=1),
        **decode_settings(),
        **extra,
    )


@entry("jax_patterns.lm.generate")
def _() -> Call:
    return generation(lm.generate)


def consume_stream(s: tp.Any) -> tp.Any:
    frames = list(s)
    return (np.concatenate(frames, axis=-1) if frames else None), np.asarray(s.lengths)


@entry("jax_patterns.lm.stream")
def _() -> Call:
    return generation(
        lm.stream,
        consume_stream,
        chunk_steps=Int(2, 1, None),
        progress=Obj(False, True, accept=callable, optional=True),
    )


@entry("jax_patterns.lm.DecodeOptions")
def _() -> Call:
    settings = decode_settings()
    settings = {k: v for k, v in settings.items() if k not in ("temp", "top_k", "top_p", "cfg_coef")}
    return Call(
        lambda **kw: lm.generate(toy_step, 0, pattern(), PROMPT, lm.DecodeOptions(**kw), key=KEY),
        **settings,
        sampling=Obj(lm.Sampling(temp=0.5), lm.Sampling()),
    )


@entry("jax_patterns.lm.Sampling")
def _() -> Call:
    return Call(
        lambda **kw: lm.generate(
            toy_step,
            0,
            pattern(),
            PROMPT,
            special_token=SPECIAL,
            use_sampling=True,
            key=KEY,
            sampling=lm.Sampling(**kw),
        ),
        temp=Real(1.0, 0.0, batch=1),
        top_k=Int(2, 0, batch=1),
        top_p=Real(0.0, 0.0, 1.0, batch=1),
        cfg_coef=Real(None, optional=True, batch=1),
    )


def init_rows(batch: int) -> np.ndarray:
    return np.zeros(batch, np.int32)


def run_engine(engine: tp.Any, prompts: tp.Sequence[tp.Any] = (PROMPT[0],)) -> dict[int, tp.Any]:
    """Submits `prompts` (unless the call did) and runs the engine dry: each request's frames, concatenated."""
    if not getattr(engine, "_fuzz_submitted", False):
        for prompt in prompts:
            engine.submit(prompt)
    out: dict[int, list] = {}
    for rid, frames, _ in engine:
        out.setdefault(rid, []).append(np.asarray(frames))
    return {rid: np.concatenate(f, axis=-1) for rid, f in out.items()}


def engine_args() -> dict[str, tp.Any]:
    settings = decode_settings()
    return dict(
        step_fn=Obj(toy_step, other_step),
        init_state=Obj(init_rows, accept=callable),
        pattern_provider=Obj(provider(), jp.DelayedPatternProvider(2, [0, 0])),
        options=Obj(None, optional=True),
        slots=Int(2, 1),
        max_timesteps=Int(5, 1),
        chunk_steps=Int(2, 1, None),
        key=Key(KEY, optional=True),
        prompt_buckets=Seq([1, 4], Int(1, 0), optional=True, lengths=lambda n: n >= 0),
        condition_fn=Obj(None, optional=True),
        history=Int(16, 0),
        **settings,
    )


@entry("jax_patterns.lm.Engine")
def _() -> Call:
    return Call(lm.Engine, run_engine, **engine_args())


def fresh_engine() -> tp.Any:
    return lm.Engine(
        toy_step,
        init_rows,
        provider(),
        slots=2,
        max_timesteps=5,
        chunk_steps=2,
        key=KEY,
        special_token=SPECIAL,
        use_sampling=True,
    )


@entry("jax_patterns.lm.Engine.submit")
def _() -> Call:
    def submit(**kw: tp.Any) -> tp.Any:
        engine = fresh_engine()
        engine.submit(**kw)
        engine._fuzz_submitted = True
        return run_engine(engine)

    return Call(
        submit,
        prompt=codes(PROMPT[0], below=2**31, forbid=(SPECIAL,), empty=OK),
        max_timesteps=Int(4, 1, 5, optional=True),
        sampling=Obj(lm.Sampling(temp=0.5), lm.Sampling(), optional=True),
        key=Key(jax.random.key(1), optional=True),
        conditions=Obj(None, optional=True),
    )


@entry("jax_patterns.lm.sample_next_token")
def _() -> Call:
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 2, CARD)), jnp.float32)
    return Call(
        lm.sample_next_token,
        logits=Array(logits, "float", empty=OK),
        key=Key(KEY, batch=2, optional=True),
        use_sampling=flag(True),
        temp=Real(1.0, 0.0, batch=2),
        top_k=Int(2, 0, batch=2),
        top_p=Real(0.5, 0.0, 1.0, batch=2),
    )


# ---------------------------------------------------------------------------
# lm: losses
# ---------------------------------------------------------------------------
def logits_for(seq_steps: int, batch: int = 1, k: int = 2) -> np.ndarray:
    return np.random.default_rng(seq_steps).normal(size=(batch, k, seq_steps, CARD)).astype(np.float32)


def zero_apply(seq: jax.Array) -> jax.Array:
    return jax.nn.one_hot(seq % CARD, CARD) * 2.0


def mask_kw() -> Array:
    return Array(np.ones((1, 2, 4), bool), "bool", optional=True)


@entry("jax_patterns.lm.compute_predictions")
def _() -> Call:
    return Call(
        lm.compute_predictions,
        apply_fn=Obj(zero_apply),
        codes=codes(CODES, below=2**31, empty=RAISE),
        pattern=Obj(pattern()),
        special_token=token(),
        keep_only_valid_steps=flag(True),
        lengths=lengths(),
        padding_side=side(),
    )


@entry("jax_patterns.lm.pattern_cross_entropy")
def _() -> Call:
    return Call(
        lm.pattern_cross_entropy,
        logits_seq=Array(logits_for(6), "float", shapes=lambda s: False, names=["codes"]),
        codes=codes(CODES, empty=RAISE),
        pattern=Obj(pattern()),
        keep_only_valid_steps=flag(False),
        mask=mask_kw(),
        lengths=lengths(),
        padding_side=side(),
        average=Choice("codebooks", ("codebooks", "tokens")),
    )


@entry("jax_patterns.lm.fused_pattern_cross_entropy")
def _() -> Call:
    rng = np.random.default_rng(1)
    return Call(
        lm.fused_pattern_cross_entropy,
        hidden=Array(rng.normal(size=(1, 6, 4)).astype(np.float32), "float"),
        heads=Array(rng.normal(size=(2, 4, CARD)).astype(np.float32), "float", names=["bias"]),
        codes=codes(CODES, empty=RAISE),
        pattern=Obj(pattern()),
        bias=Array(rng.normal(size=(2, CARD)).astype(np.float32), "float", optional=True),
        keep_only_valid_steps=flag(False),
        mask=mask_kw(),
        lengths=lengths(),
        padding_side=side(),
        average=Choice("codebooks", ("codebooks", "tokens")),
        block_steps=Int(2, 1, None, optional=True),
    )


def packed_targets() -> np.ndarray:
    return packed().targets[:, :, :8]


@entry("jax_patterns.lm.packed_cross_entropy")
def _() -> Call:
    return Call(
        lm.packed_cross_entropy,
        logits_seq=Array(logits_for(8), "float", names=["targets"]),
        targets=Array(packed_targets(), elem=Int(0, -1, CARD - 1)),
        skip_empty=flag(),
    )


@entry("jax_patterns.lm.fused_packed_cross_entropy")
def _() -> Call:
    rng = np.random.default_rng(2)
    return Call(
        lm.fused_packed_cross_entropy,
        hidden=Array(rng.normal(size=(1, 8, 4)).astype(np.float32), "float"),
        heads=Array(rng.normal(size=(2, 4, CARD)).astype(np.float32), "float", names=["bias"]),
        targets=Array(packed_targets(), elem=Int(0, -1, CARD - 1)),
        bias=Array(rng.normal(size=(2, CARD)).astype(np.float32), "float", optional=True),
        block_steps=Int(3, 1, None, optional=True),
        skip_empty=flag(),
    )


@entry("jax_patterns.lm.packed_segment_cross_entropy")
def _() -> Call:
    p = packed()
    return Call(
        lm.packed_segment_cross_entropy,
        logits_seq=Array(logits_for(12), "float", names=["targets"]),
        targets=Array(p.targets, elem=Int(0, -1, CARD - 1)),
        segment_ids=Array(p.segment_ids, elem=Int(0, 0, 2)),
        segments=Int(2, 1),
    )


# ---------------------------------------------------------------------------
# lm: MAGNeT
# ---------------------------------------------------------------------------
MASK = np.array([[True, False, True, True]])


def magnet_model_fn(tokens: jax.Array, stage: jax.Array) -> jax.Array:
    return jax.nn.one_hot((tokens + stage) % CARD, CARD) * 3.0


@entry("jax_patterns.lm.magnet_generate")
def _() -> Call:
    return Call(
        lm.magnet_generate,
        model_fn=Obj(magnet_model_fn),
        prompt=codes(PROMPT, below=CARD, forbid=(), empty=OK),
        timesteps=Int(4, 1),
        mask_token=Int(CARD, CARD, CARD),
        key=Key(KEY, batch=1, optional=True),
        decoding_steps=Seq([2, 1], Int(2, 1), lengths=lambda n: n >= 2),  # the first K used (audiocraft's zip)
        span_len=Int(2, 1),
        span_arrangement=Choice("nonoverlap", ("nonoverlap", "stride1")),
        span_scoring=Choice("max", ("max", "prod")),
        use_sampling=flag(True),
        temp=Real(3.0, 0.0, batch=1),
        anneal_temp=flag(True),
        top_k=Int(0, 0, batch=1),
        top_p=Real(0.9, 0.0, 1.0, batch=1),
        max_cfg_coef=Real(None, optional=True, batch=1),
        min_cfg_coef=Real(1.0, optional=True, batch=1),  # None: fine without guidance
        prompt_lengths=lengths(np.array([1]), timesteps=1),
    )


@entry("jax_patterns.lm.magnet_mask")
def _() -> Call:
    return Call(
        lm.magnet_mask,
        key=Key(KEY),
        batch=Int(2, 1),
        timesteps=Int(6, 1),
        n_q=Int(2, 1),
        span_len=Int(2, 1),
        mask_timesteps=Int(None, 1, optional=True),
    )


@entry("jax_patterns.lm.magnet_inputs")
def _() -> Call:
    return Call(
        lm.magnet_inputs,
        codes=codes(CODES, below=2**31, forbid=(SPECIAL,), empty=RAISE, names=["mask"]),
        stage=Int(1, 0, 1),
        mask=Array(MASK, "bool"),
        mask_token=Int(SPECIAL, 0, names=["codes"]),
    )


@entry("jax_patterns.lm.magnet_cross_entropy")
def _() -> Call:
    return Call(
        lm.magnet_cross_entropy,
        logits=Array(logits_for(4), "float", names=["codes"]),
        codes=codes(CODES, empty=RAISE, names=["logits"]),
        stage=Int(1, 0, 1),
        mask=Array(MASK, "bool"),
        lengths=lengths(),
        padding_side=side(),
    )


# ---------------------------------------------------------------------------
# lm: models and the step-model protocol
# ---------------------------------------------------------------------------
@functools.cache
def codec_lm(causal: bool = True) -> lm.CodecLM:
    return lm.CodecLM(2, CARD, dim=8, num_layers=1, num_heads=2, max_len=16, causal=causal, rngs=nnx.Rngs(0))


SEQ = np.array([[[8, 1, 2, 3], [8, 8, 5, 6]]], np.int32)  # [B=1, K=2, S=4] tokens in [0, card]


def model_output(model: tp.Any) -> tp.Any:
    """A built model as plain data: its logits on a fixed sequence (equal models give equal logits)."""
    tokens = np.arange(model.n_q * 4).reshape(1, model.n_q, 4) % (model.card + 1)
    return np.asarray(model(jnp.asarray(tokens, jnp.int32)))


FRESH_RNGS = nnx.Rngs(0)
"""Stands for a new `nnx.Rngs(0)` in each call (an Rngs is consumed by initialisation)."""


def with_fresh_rngs(cls: tp.Callable) -> tp.Callable:
    def build(rngs: tp.Any, **kw: tp.Any) -> tp.Any:
        return cls(rngs=nnx.Rngs(0) if rngs is FRESH_RNGS else rngs, **kw)

    return build


@entry("jax_patterns.lm.CodecLM")
def _() -> Call:
    return Call(
        with_fresh_rngs(lm.CodecLM),
        model_output,
        n_q=n_q(),
        card=Int(CARD, 1),
        dim=Int(8, 1),
        num_layers=Int(1, 0),
        num_heads=Int(2, 1),
        max_len=Int(16, 1),
        causal=flag(True),
        subcodes_context=Int(5, -1),
        rngs=Obj(FRESH_RNGS, accept=lambda r: isinstance(r, nnx.Rngs)),
    )


@entry("jax_patterns.lm.CodecLM.__call__")
def _() -> Call:
    model = codec_lm(False)
    return Call(
        model,
        seq=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        segment_ids=Array(np.array([[1, 1, 2, 2]], np.int32), optional=True),
        positions=Array(np.array([[0, 1, 0, 1]], np.int32), elem=Int(0, 0, 15), optional=True),
        stage=Int(1, 0, 1, optional=True),
    )


@entry("jax_patterns.lm.CodecLM.hidden")
def _() -> Call:
    return Call(
        codec_lm().hidden,
        seq=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        segment_ids=Array(np.array([[1, 1, 2, 2]], np.int32), optional=True),
        positions=Array(np.array([[0, 1, 0, 1]], np.int32), elem=Int(0, 0, 15), optional=True),
    )


@entry("jax_patterns.lm.CodecLM.head_weights")
def _() -> Call:
    return Call(codec_lm().head_weights)


@entry("jax_patterns.lm.CodecLM.init_cache")
def _() -> Call:
    return Call(
        codec_lm().init_cache,
        batch=Int(2, 1),
        dtype=Obj(jnp.float32, jnp.bfloat16, np.float32, accept=float_dtype),
        per_row=flag(),
    )


@entry("jax_patterns.lm.CodecLM.decode")
def _() -> Call:
    model = codec_lm()
    return Call(
        model.decode,
        cache=Obj(model.init_cache(1)),
        tokens=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        info=Anything(None),
    )


@entry("jax_patterns.lm.step_fn_of")
def _() -> Call:
    return Call(
        lambda model: lm.generate(lm.step_fn_of(model), model.init_cache(1), pattern(), PROMPT, special_token=SPECIAL),
        model=Obj(codec_lm()),
    )


class Conditioned(nnx.Module):
    """A conditioned step model: the condition is added to the logits."""

    def __init__(self) -> None:
        self.scale = nnx.Param(jnp.ones(()))

    def init_cache(self, batch: int, *, per_row: bool = False) -> tp.Any:
        return {"bias": jnp.zeros((batch, CARD))}

    def condition(self, cache: tp.Any, conditions: tp.Any) -> tp.Any:
        return {"bias": cache["bias"] + conditions["bias"] * self.scale[...]}

    def decode(self, cache: tp.Any, tokens: jax.Array, info: tp.Any = None) -> tuple[jax.Array, tp.Any]:
        return toy_step(None, tokens)[0] + cache["bias"][:, None, :], cache


@entry("jax_patterns.lm.condition_fn_of")
def _() -> Call:
    def run(model: tp.Any) -> tp.Any:
        condition_fn = lm.condition_fn_of(model)
        cache = {"bias": jnp.zeros((1, CARD))}
        return condition_fn(cache, {"bias": jnp.ones((1, CARD))})

    return Call(run, model=Obj(Conditioned()))


@entry("jax_patterns.lm.magnet_fn_of")
def _() -> Call:
    def run(model: tp.Any, conditions: tp.Any) -> tp.Any:
        fn = lm.magnet_fn_of(model, conditions)
        return fn(jnp.asarray(SEQ), jnp.asarray(1, jnp.int32))

    return Call(run, model=Obj(codec_lm(False)), conditions=Obj(None, optional=True))


@entry("jax_patterns.lm.ModelStep")
def _() -> Call:
    model = codec_lm()
    graphdef, params = nnx.split(model)
    return Call(
        lambda **kw: lm.ModelStep(**kw)(params, model.init_cache(1), jnp.asarray(SEQ))[0],
        graphdef=Obj(graphdef),
        max_len=Int(16, 1, optional=True),
    )


@entry("jax_patterns.lm.ModelStep.__call__")
def _() -> Call:
    model = codec_lm()
    graphdef, params = nnx.split(model)
    return Call(
        lm.ModelStep(graphdef, 16),
        params=Obj(params),
        cache=Obj(model.init_cache(1)),
        tokens=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        info=Anything(None),
    )


# ---------------------------------------------------------------------------
# presets (each: its constructor's fields, then every method on a valid preset)
# ---------------------------------------------------------------------------
from jax_patterns import presets  # noqa: E402


def ids_arg(valid: tp.Any, below: int = 2**31, **kw: tp.Any) -> Array:
    """Model ids (codes and special ids), integers in `[0, below)`."""
    return Array(valid, "int", elem=Int(0, 0, below - 1), **kw)


def preset_entries(name: str, cls: type, fields: dict[str, tp.Any], methods: dict[str, tp.Callable]) -> None:
    """The constructor's entry (its fields as arguments; the preset compared by value) and one per method."""
    TABLE[f"jax_patterns.presets.{name}"] = lambda: Call(cls, **fields_of(fields))
    for method, build in methods.items():
        TABLE[f"jax_patterns.presets.{name}.{method}"] = build


def fields_of(fields: dict[str, tp.Any]) -> dict[str, tp.Any]:
    return {k: (v() if callable(v) and not isinstance(v, type) else v) for k, v in fields.items()}


def mg() -> presets.MusicGen:
    return presets.MusicGen(2, SPECIAL)


MG_SEQ = np.array([[[8, 1, 2, 3, 4, 8], [8, 8, 5, 6, 7, 0]]], np.int32)  # [B, K, T + K]

preset_entries(
    "MusicGen",
    presets.MusicGen,
    {"num_codebooks": lambda: n_q(), "pad_token_id": lambda: Int(SPECIAL, 0), "audio_channels": lambda: Int(1, 1, 2)},
    {
        "sequence": lambda: Call(mg().sequence, codes=codes(empty=OK), lengths=lengths()),
        "input_ids": lambda: Call(mg().input_ids, codes=codes(empty=OK), lengths=lengths()),
        "labels": lambda: Call(mg().labels, codes=codes(empty=OK), lengths=lengths()),
        "loss": lambda: Call(
            mg().loss, logits=Array(logits_for(5), "float"), codes=codes(empty=RAISE), lengths=lengths()
        ),
        "decode": lambda: Call(
            mg().decode, ids=ids_arg(MG_SEQ, shapes=lambda s: False), timesteps=Int(4, 0), lengths=lengths()
        ),
    },
)


def moshi() -> presets.Moshi:
    return presets.Moshi(2, CARD)


preset_entries(
    "Moshi",
    presets.Moshi,
    {"num_codebooks": lambda: n_q(), "audio_vocab_size": lambda: Int(CARD, 1)},
    {
        "sequence": lambda: Call(
            moshi().sequence, codes=codes(empty=OK), timesteps=Int(4, 0, optional=True), lengths=lengths()
        ),
        "labels": lambda: Call(moshi().labels, codes=codes(empty=OK), lengths=lengths()),
        "loss": lambda: Call(
            moshi().loss, audio_logits=Array(logits_for(4), "float"), codes=codes(empty=RAISE), lengths=lengths()
        ),
        "decode": lambda: Call(
            moshi().decode,
            ids=ids_arg(np.asarray(moshi().sequence(CODES)), shapes=lambda s: False),
            timesteps=Int(4, 0),
            lengths=lengths(),
        ),
    },
)


def higgs() -> presets.HiggsAudio:
    return presets.HiggsAudio(2, SPECIAL, SPECIAL + 1)


preset_entries(
    "HiggsAudio",
    presets.HiggsAudio,
    {
        "num_codebooks": lambda: n_q(),
        "audio_stream_bos_id": lambda: Int(8, 0),
        "audio_stream_eos_id": lambda: Int(9, 0),
    },
    {
        "sequence": lambda: Call(higgs().sequence, codes=codes(empty=OK), lengths=lengths()),
        "inputs": lambda: Call(higgs().inputs, codes=codes(empty=OK), lengths=lengths()),
        "loss": lambda: Call(
            higgs().loss, audio_logits=Array(logits_for(7, k=2), "float"), codes=codes(empty=RAISE), lengths=lengths()
        ),
        "decode": lambda: Call(
            higgs().decode,
            ids=ids_arg(np.asarray(higgs().sequence(CODES)), shapes=lambda s: False),
            timesteps=Int(4, 0),
            lengths=lengths(),
            codebooks_last=flag(),
        ),
    },
)


def dia() -> presets.Dia:
    return presets.Dia((0, 1), bos_token_id=8, pad_token_id=9, eos_token_id=7)


DIA_CODES = np.array([[[1, 2, 3, 4], [5, 6, 0, 1]]], np.int32)  # below eos = 7

preset_entries(
    "Dia",
    presets.Dia,
    {
        "delay_pattern": lambda: Seq([0, 1], Int(0, 0), lengths=lambda n: 1 <= n <= N_Q_MAX),  # one per channel
        "bos_token_id": lambda: Int(8, 0),
        "pad_token_id": lambda: Int(9, 0),
        "eos_token_id": lambda: Int(7, 0),
    },
    {
        "frames": lambda: Call(
            dia().frames, codes=codes(DIA_CODES, 7, 7, empty=OK), lengths=lengths(), generation=flag()
        ),
        "sequence": lambda: Call(
            dia().sequence, codes=codes(DIA_CODES, 7, 7, empty=OK), lengths=lengths(), generation=flag()
        ),
        "inputs": lambda: Call(
            dia().inputs, codes=codes(DIA_CODES, 7, 7, empty=OK), lengths=lengths(), generation=flag()
        ),
        "loss": lambda: Call(
            dia().loss,
            logits=Array(np.random.default_rng(3).normal(size=(1, 2, 6, 10)).astype(np.float32), "float"),
            codes=codes(DIA_CODES, 7, 7, empty=RAISE),
            lengths=lengths(),
        ),
        "decode": lambda: Call(
            dia().decode,
            ids=ids_arg(np.asarray(dia().sequence(DIA_CODES)), shapes=lambda s: False),
            audio_prompt_len=Int(None, 0, optional=True),
            codebooks_last=flag(),
        ),
    },
)


def kyutai() -> presets.KyutaiSTT:
    return presets.KyutaiSTT(2, 9, 5, 8, 23)


preset_entries(
    "KyutaiSTT",
    presets.KyutaiSTT,
    {
        "num_codebooks": lambda: n_q(),
        "codebook_vocab_size": lambda: Int(9, 1),
        "vocab_size": lambda: Int(5, 1),
        "audio_bos_token_id": lambda: Int(8, 0),
        "audio_pad_token_id": lambda: Int(23, 0),
    },
    {
        "audio_ids": lambda: Call(kyutai().audio_ids, codes=codes(empty=OK), lengths=lengths()),
        "input_ids": lambda: Call(
            kyutai().input_ids,
            text=ids_arg(np.array([[1, 2, 3]], np.int32), below=5, shapes=lambda s: s[0] == 1 and s[1] <= 5),
            codes=codes(empty=OK),
            lengths=lengths(),
        ),
        "embedding_ids": lambda: Call(
            kyutai().embedding_ids, input_ids=ids_arg(np.array([[[1, 8, 8], [2, 3, 23]]], np.int32), ranks=(1, 2, 3, 4))
        ),
    },
)


def bark() -> presets.BarkCoarse:
    return presets.BarkCoarse(2, CARD, 10)


BARK_STREAM = np.array([[11, 23, 12, 24]], np.int32)  # two frames: codes (1, 5), (2, 6)

preset_entries(
    "BarkCoarse",
    presets.BarkCoarse,
    {
        "n_coarse_codebooks": lambda: n_q(),
        "codebook_size": lambda: Int(CARD, 1),
        "semantic_vocab_size": lambda: Int(10, 0),
    },
    {
        "stream": lambda: Call(bark().stream, codes=codes(empty=OK)),
        "codes": lambda: Call(
            bark().codes, stream=ids_arg(BARK_STREAM, ranks=(1, 2, 3), shapes=lambda s: s[-1] % 2 == 0)
        ),
        "history": lambda: Call(
            bark().history,
            coarse_prompt=codes(CODES[0], empty=OK),
            semantic_length=Int(4, 0),
            max_coarse_history=Int(6, 0),
            semantic_to_coarse_ratio=Real(1.5, 0.0),
        ),
    },
)


def csm() -> presets.CSM:
    return presets.CSM(2, 10, audio_token_id=6, audio_eos_token_id=7, codebook_pad_token_id=9)


CSM_IDS = np.array([[1, 6, 6, 6, 6, 7]], np.int32)  # 4 placeholders for CODES' 4 frames, then the audio eos

preset_entries(
    "CSM",
    presets.CSM,
    {
        "num_codebooks": lambda: n_q(),
        "vocab_size": lambda: Int(10, 1),
        "audio_token_id": lambda: Int(6, 0),
        "audio_eos_token_id": lambda: Int(7, 0),
        "codebook_eos_token_id": lambda: Int(0, 0),
        "codebook_pad_token_id": lambda: Int(9, 0),
    },
    {
        "audio_positions": lambda: Call(csm().audio_positions, input_ids=ids_arg(CSM_IDS, shapes=lambda s: True)),
        "frames": lambda: Call(
            csm().frames,
            input_ids=ids_arg(CSM_IDS, shapes=lambda s: False),
            codes=codes(below=9, special=9, empty=RAISE),  # CSM's codes: [0, vocab_size=10) but its pad, 9
            lengths=lengths(),
        ),
        "embedding_ids": lambda: Call(
            csm().embedding_ids,
            frames=ids_arg(np.asarray(csm().frames(CSM_IDS, CODES)), below=10, ranks=(1, 2, 3, 4)),
        ),
        "labels": lambda: Call(
            csm().labels,
            input_ids=ids_arg(CSM_IDS, shapes=lambda s: False),
            codes=codes(below=9, special=9, empty=RAISE),
            lengths=lengths(),
            depth=Array(np.array([[False, True, True, False, True, True]]), "bool", optional=True),
        ),
        "loss": lambda: Call(
            csm().loss,
            backbone_logits=Array(np.random.default_rng(4).normal(size=(1, 6, 10)).astype(np.float32), "float"),
            depth_logits=Array(np.random.default_rng(5).normal(size=(1, 6, 1, 10)).astype(np.float32), "float"),
            labels=Array(np.asarray(csm().labels(CSM_IDS, CODES)), "int", elem=Int(0, presets.IGNORE, 9)),  # or -100
        ),
        "decode": lambda: Call(
            csm().decode,
            frames=ids_arg(np.array([[[1, 2, 0, 3], [4, 0, 0, 5]]], np.int32), below=10, shapes=lambda s: False),
            codebooks_last=flag(),
        ),
    },
)


def qwen() -> presets.Qwen3OmniTalker:
    return presets.Qwen3OmniTalker(3, 1032, 8, 1030, 1031)


preset_entries(
    "Qwen3OmniTalker",
    presets.Qwen3OmniTalker,
    {
        "num_code_groups": lambda: n_q(3),
        "vocab_size": lambda: Int(1032, 1),
        "code_vocab_size": lambda: Int(8, 1),
        "codec_eos_token_id": lambda: Int(1030, 0),
        "codec_pad_id": lambda: Int(1031, 0, optional=True),
    },
    {
        "embedding_ids": lambda: Call(
            qwen().embedding_ids,
            frames=ids_arg(
                np.array([[5, 1, 2], [1030, 0, 0]], np.int32), below=1032, ranks=(1, 2, 3)
            ),  # group 0: talker ids
        ),
        "text_positions": lambda: Call(
            qwen().text_positions, steps=Int(4, 0), text_length=Array(np.array([2], np.int32), elem=Int(0, 0))
        ),
        "decode": lambda: Call(
            qwen().decode,
            frames=ids_arg(np.array([[[5, 1030, 2], [1, 0, 3], [2, 0, 4]]], np.int32), shapes=lambda s: False),
            codebooks_last=flag(),
        ),
    },
)


def parler() -> presets.ParlerTTS:
    return presets.ParlerTTS(2, 9, 8, 8)


preset_entries(
    "ParlerTTS",
    presets.ParlerTTS,
    {
        "num_codebooks": lambda: n_q(),
        "bos_token_id": lambda: Int(9, 0),
        "eos_token_id": lambda: Int(8, 0),
        "pad_token_id": lambda: Int(8, 0),
    },
    {
        "sequence": lambda: Call(parler().sequence, codes=codes(empty=OK), lengths=lengths()),
        "labels": lambda: Call(parler().labels, codes=codes(empty=OK), lengths=lengths()),
        "input_ids": lambda: Call(parler().input_ids, codes=codes(empty=OK), lengths=lengths()),
        "decode": lambda: Call(
            parler().decode, ids=ids_arg(np.asarray(parler().sequence(CODES)), shapes=lambda s: s[1] == 2 and s[2] >= 2)
        ),
    },
)


def orpheus() -> presets.Orpheus:
    return presets.Orpheus(offset=100, codebook_size=CARD)


LEVELS = (np.array([[1]], np.int32), np.array([[2, 3]], np.int32), np.array([[4, 5, 6, 7]], np.int32))
ORPHEUS_IDS = np.asarray(orpheus().tokens(LEVELS))

preset_entries(
    "Orpheus",
    presets.Orpheus,
    {"offset": lambda: Int(100, 0), "codebook_size": lambda: Int(CARD, 1)},
    {
        "virtual": lambda: Call(orpheus().virtual, levels=Seq(list(LEVELS), Anything(None))),
        "tokens": lambda: Call(orpheus().tokens, levels=Seq(list(LEVELS), Anything(None))),
        "codes": lambda: Call(
            orpheus().codes, ids=ids_arg(ORPHEUS_IDS, below=100 + 7 * CARD, shapes=lambda s: s[-1] % 7 == 0)
        ),
        "split": lambda: Call(orpheus().split, ids=ids_arg(ORPHEUS_IDS[:, :5], shapes=lambda s: True)),
    },
)


@entry("jax_patterns.presets.from_transformers")
def _() -> Call:
    """A MusicGen decoder config as a mapping; each field is fuzzed as an argument (the message names the field)."""

    def read(config: tp.Any, **fields: tp.Any) -> tp.Any:
        if config is not MUSICGEN_CONFIG:
            return presets.from_transformers(config)
        return presets.from_transformers({**config, **fields})

    return Call(
        read,
        config=Obj(MUSICGEN_CONFIG, accept=lambda c: isinstance(c, dict), names=["config", "model_type"]),
        num_codebooks=n_q(),
        pad_token_id=Int(SPECIAL, 0),
        audio_channels=Int(1, 1, 2, optional=True),
        model_type=Choice("musicgen_decoder", ("musicgen_decoder", "musicgen"), names=["model_type"]),
    )


MUSICGEN_CONFIG = {"model_type": "musicgen_decoder", "num_codebooks": 2, "pad_token_id": SPECIAL, "audio_channels": 1}


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------
from jax_patterns import train as training  # noqa: E402


def corpus_output(corpus: tp.Any) -> tp.Any:
    return len(corpus), [np.asarray(corpus[i]) for i in range(min(len(corpus), 2))]


@entry("jax_patterns.train.MarkovCodes")
def _() -> Call:
    return Call(
        training.MarkovCodes,
        corpus_output,
        n_q=n_q(),
        card=Int(4, 1),
        min_len=Int(2, 1),
        max_len=Int(3, 1),
        size=Int(3, 1, 2**63 - 1),  # lazily generated: any size len() can hold
        seed=Int(0, 0, 2**32 - 1),
        noise=Real(0.1, 0.0, 1.0),
    )


def first_batch(dataset: tp.Any) -> tp.Any:
    """The first batch; the iterator is closed (its prefetch thread stopped) before the call returns."""
    iterator = iter(dataset)
    try:
        return next(iterator)
    finally:
        getattr(iterator, "close", lambda: None)()


@entry("jax_patterns.train.input_pipeline")
def _() -> Call:
    return Call(
        training.input_pipeline,
        first_batch,
        source=Obj(training.MarkovCodes(2, 4, 2, 3, size=4), accept=lambda s: isinstance(s, training.MarkovCodes)),
        provider=Obj(provider()),
        batch_size=Int(2, 1),
        row_steps=Int(8, 1),
        special_token=token(4),
        seed=Int(0, 0, 2**32 - 1),
        pack=flag(),
        packing_bins=Int(None, 1, optional=True),
        prefetch=Int(0, 0),
    )


TRAIN_OPTIONS: dict[str, tp.Any] = dict(
    steps=1, batch_size=1, n_q=2, card=4, max_frames=4, min_frames=2, dim=8, log_every=1, save_every=1
)


@entry("jax_patterns.train.Options")
def _() -> Call:
    return Call(
        training.Options,
        steps=Int(1, 1),
        batch_size=Int(1, 1),
        seed=Int(0, 0, 2**32 - 1),
        pack=flag(),
        checkpoint_dir=Obj(None, accept=lambda d: isinstance(d, str) and d.strip() != "", optional=True),
        stop_after=Int(None, 1, optional=True),
        coordinator=Obj(None, accept=lambda c: isinstance(c, str) and ":" in c, optional=True),
        coordinator_timeout=Int(120, 1),
        num_processes=Int(1, 1),
        process_id=Int(0, 0),
        log_every=Int(1, 1),
        save_every=Int(1, 1),
        n_q=n_q(),
        card=Int(4, 1),
        max_frames=Int(4, 1),
        min_frames=Int(2, 1, optional=True),
        dim=Int(8, 4),
        learning_rate=Real(1e-2, 0.0),
        loss=Choice("fused", ("fused", "unfused")),
    )


def records_without_speed(records: tp.Any) -> tp.Any:
    return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in records]


@entry("jax_patterns.train.train")
def _() -> Call:
    return Call(
        training.train,
        records_without_speed,
        options=Obj(training.Options(**TRAIN_OPTIONS)),
        emit=Obj(None, accept=callable, optional=True),
    )


def launch_at_most_two(**kw: tp.Any) -> int:
    """`launch`, refusing (RuntimeError) to start a third process: a bad `processes` must never fork-bomb the run."""
    import unittest.mock

    from jax_patterns.train import _command

    started: list[int] = []
    real = _command.subprocess.Popen

    def popen(*args: tp.Any, **kwargs: tp.Any) -> tp.Any:
        if len(started) >= 2:
            raise RuntimeError(f"launch started more than 2 processes (processes={kw.get('processes')!r})")
        started.append(1)
        return real(*args, **kwargs)

    with unittest.mock.patch.object(_command.subprocess, "Popen", popen):
        return training.launch(**kw)


@entry("jax_patterns.train.launch")
def _() -> Call:
    return Call(
        launch_at_most_two,
        processes=Int(1, 1, 1024),
        argv=Seq(["--help"], Obj("--help", accept=lambda a: isinstance(a, str)), lengths=lambda n: n >= 0),
        timeout=Real(60.0, 0.0, optional=True),
    )


# ---------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------
from jax_patterns import models  # noqa: E402

DIM = 8


@functools.cache
def musicgen(causal: bool = True) -> models.MusicGen:
    return models.MusicGen(2, CARD, DIM, 2, 1, max_len=16, causal=causal, encoder_dim=4, rngs=nnx.Rngs(0))


STATES = np.random.default_rng(6).normal(size=(1, 3, 4)).astype(np.float32)  # [B, S_enc, encoder_dim]
STATES_MASK = np.array([[1, 1, 0]], np.int32)


def states(**kw: tp.Any) -> Array:
    return Array(STATES, "float", optional=True, **kw)


def states_mask(**kw: tp.Any) -> Array:
    return Array(STATES_MASK, "any", optional=True, **kw)


@entry("jax_patterns.models.MusicGen")
def _() -> Call:
    return Call(
        with_fresh_rngs(models.MusicGen),
        model_output,
        n_q=n_q(),
        card=Int(CARD, 1),
        dim=Int(DIM, 2),
        num_heads=Int(2, 1),
        num_layers=Int(1, 1),
        ffn_dim=Int(None, 1, optional=True),
        max_len=Int(16, 1),
        cross_attention=flag(True),
        encoder_dim=Int(None, 1, optional=True),
        causal=flag(True),
        subcodes_context=Int(-1, -1),
        bias_attn=flag(),
        bias_ff=flag(),
        bias_proj=flag(),
        provider=Obj(None, jp.DelayedPatternProvider(2, [0, 0]), optional=True),
        audio_channels=Int(1, 1, 2),
        hide_special=flag(),
        mask_condition=flag(True),
        positions=Choice("transformers", ("transformers", "audiocraft")),
        param_dtype=Obj(jnp.float32, jnp.bfloat16, accept=float_dtype),
        dtype=Obj(jnp.float32, jnp.bfloat16, accept=float_dtype),
        rngs=Obj(FRESH_RNGS, accept=lambda r: isinstance(r, nnx.Rngs)),
    )


def whole_sequence(method: tp.Callable) -> Call:
    return Call(
        method,
        codes_seq=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        encoder_hidden_states=states(),
        encoder_attention_mask=states_mask(),
        stage=Int(None, 0, 1, optional=True),
    )


TABLE["jax_patterns.models.MusicGen.__call__"] = lambda: whole_sequence(musicgen())
TABLE["jax_patterns.models.MusicGen.hidden"] = lambda: whole_sequence(musicgen().hidden)


@entry("jax_patterns.models.MusicGen.head_weights")
def _() -> Call:
    return Call(musicgen().head_weights)


@entry("jax_patterns.models.MusicGen.step_fn")
def _() -> Call:
    return Call(lambda: musicgen().step_fn().func)


@entry("jax_patterns.models.MusicGen.check_condition")
def _() -> Call:
    return Call(
        musicgen().check_condition,
        states_shape=Seq([1, 3, 4], Int(1, 0)),
        mask_shape=Seq([1, 3], Int(1, 0), optional=True),
        batch=Int(1, 0),
    )


@entry("jax_patterns.models.MusicGen.init_cache")
def _() -> Call:
    return Call(
        musicgen().init_cache,
        batch=Int(1, 0),
        per_row=flag(),
        condition_len=Int(3, 0),
        dtype=Obj(None, jnp.bfloat16, accept=float_dtype, optional=True),
        length=Int(None, 1, optional=True),
    )


CONDITIONS = {"encoder_hidden_states": STATES, "encoder_attention_mask": STATES_MASK}


@entry("jax_patterns.models.MusicGen.condition")
def _() -> Call:
    model = musicgen()
    return Call(
        model.condition,
        cache=Obj(model.init_cache(1, condition_len=3)),
        conditions=Obj(CONDITIONS, {"encoder_hidden_states": STATES}),
    )


@entry("jax_patterns.models.MusicGen.guided_conditions")
def _() -> Call:
    return Call(musicgen().guided_conditions, conditions=Obj(CONDITIONS, {"encoder_hidden_states": STATES}))


@entry("jax_patterns.models.MusicGen.decode")
def _() -> Call:
    model = musicgen()
    return Call(
        model.decode,
        cache=Obj(model.init_cache(1)),
        tokens=Array(SEQ, elem=Int(0, 0, CARD), shapes=lambda s: s[1] == 2 and s[2] <= 16),
        info=Anything(None),
    )


@entry("jax_patterns.models.MusicGen.generate")
def _() -> Call:
    return Call(
        musicgen().generate,
        encoder_hidden_states=states(),
        encoder_attention_mask=states_mask(),
        max_new_frames=Int(3, 1),
        prompt=codes(PROMPT, optional=True),
        guidance_scale=Real(2.0, optional=True, batch=1),
        use_sampling=flag(True),
        temp=Real(1.0, 0.0, batch=1),
        top_k=Int(2, 0, batch=1),
        top_p=Real(0.0, 0.0, 1.0, batch=1),
        key=Key(KEY, batch=1, optional=True),
    )


@entry("jax_patterns.models.MusicGen.engine")
def _() -> Call:
    def serve(**kw: tp.Any) -> tp.Any:
        engine = musicgen().engine(**kw)
        engine.submit(PROMPT[0], conditions={k: v[None][0] for k, v in CONDITIONS.items()})
        engine._fuzz_submitted = True
        return run_engine(engine)

    return Call(
        serve,
        slots=Int(2, 1),
        max_timesteps=Int(4, 1),
        condition_len=Int(3, 0),
        guidance_scale=Real(2.0, optional=True),
        use_sampling=flag(True),
        temp=Real(1.0, 0.0),
        top_k=Int(2, 0),
        top_p=Real(0.0, 0.0, 1.0),
        chunk_steps=Int(2, 1, None),
        key=Key(KEY, optional=True),
        prompt_buckets=Seq([1, 4], Int(1, 0), optional=True, lengths=lambda n: n >= 0),
    )


@entry("jax_patterns.models.MusicGen.magnet_fn")
def _() -> Call:
    return Call(
        lambda **kw: musicgen(False).magnet_fn(**kw)(jnp.asarray(SEQ), jnp.asarray(1, jnp.int32)),
        encoder_hidden_states=states(),
        encoder_attention_mask=states_mask(),
    )


def audiocraft_checkpoint() -> tuple[dict, dict]:
    import json
    import pathlib

    with np.load(pathlib.Path(__file__).parent / "goldens" / "musicgen_1_3_0.npz") as store:
        prefix = "musicgen/state/"
        state = {k[len(prefix) :]: store[k] for k in store.files if k.startswith(prefix)}
        index = json.loads(str(store["index"]))
    return state, index["cases"]["musicgen"]["cfg"]


DTYPES = dict(
    param_dtype=Obj(jnp.float32, jnp.bfloat16, accept=float_dtype),
    dtype=Obj(jnp.float32, jnp.bfloat16, accept=float_dtype),
)


@entry("jax_patterns.models.MusicGen.from_audiocraft")
def _() -> Call:
    state, cfg = audiocraft_checkpoint()
    return Call(
        models.MusicGen.from_audiocraft,
        model_output,
        state_dict=Obj(state),
        cfg=Obj(cfg),
        max_len=Int(16, 1),
        hide_special=flag(),
        mask_condition=flag(),
        **DTYPES,
    )


@entry("jax_patterns.models.MusicGen.from_transformers")
def _() -> Call:
    import torch
    from transformers import MusicgenDecoderConfig, MusicgenForCausalLM

    torch.manual_seed(0)
    config = MusicgenDecoderConfig(  # (the config takes `decoder_start_token_id` through its kwargs)
        **dict(decoder_start_token_id=CARD),
        vocab_size=CARD,
        max_position_embeddings=16,
        num_hidden_layers=1,
        ffn_dim=16,
        num_attention_heads=2,
        hidden_size=DIM,
        num_codebooks=2,
        pad_token_id=CARD,
        bos_token_id=CARD,
    )
    model = MusicgenForCausalLM(config).eval()
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    return Call(
        models.MusicGen.from_transformers,
        model_output,
        model_or_state_dict=Obj(model, state),
        config=Obj(None, config, config.to_dict(), optional=True),
        max_len=Int(16, 1),
        hide_special=flag(),
        mask_condition=flag(True),
        **DTYPES,
    )


# ---------------------------------------------------------------------------
# Two-level decoders
# ---------------------------------------------------------------------------
def counting(state: tp.Any, tokens: jax.Array, info: tp.Any) -> tuple[jax.Array, tp.Any, tp.Any]:
    """A backbone: codebook 0 is the number of frames seen (mod 5), which is also its hidden state."""
    state = state + tokens.shape[-1]
    return jax.nn.one_hot(state % 5, 5) * 9.0, state % 5, state


def plus_one(previous: tp.Any, token: jax.Array, level: jax.Array) -> tuple[jax.Array, tp.Any]:
    """A depth model: codebook `level` is codebook `level - 1`'s code plus `level`."""
    return jax.nn.one_hot((token + level) % 5, 5) * 9.0, previous


def two_level_run(step: tp.Any, state: tp.Any, n_q: int = 3) -> tp.Any:
    prompt = np.zeros((1, n_q, 0), np.int32)
    pattern = jp.ParallelPatternProvider(n_q).get_pattern(3)
    return lm.generate(step, state, pattern, prompt, special_token=5, step_info=True, step_returns="tokens", key=KEY)


def levels() -> dict[str, tp.Any]:
    sampling = lm.Sampling(temp=0.8, top_k=2)
    return dict(
        use_sampling=flag(),
        sampling=Obj(lm.Sampling(), sampling),
        depth_sampling=Obj(lm.Sampling(), sampling),
    )


@entry("jax_patterns.lm.two_level_step")
def _() -> Call:
    return Call(
        lambda **kw: two_level_run(lm.two_level_step(**kw), jnp.zeros(1, jnp.int32)),
        backbone_fn=Obj(counting),
        depth_fn=Obj(plus_one),
        n_q=Int(3, 3, 3),
        depth_init=Obj(lambda hidden: hidden, accept=callable),  # the toy ignores the depth state
        **levels(),
    )


@entry("jax_patterns.lm.two_level_step_of")
def _() -> Call:
    from jax_patterns.bench import _two_level

    model = _two_level.toy(3, 5, dim=8, depth_dim=8, max_len=4, seed=0)
    return Call(
        lambda **kw: two_level_run(lm.two_level_step_of(**kw), model.init_cache(1)),
        model=Obj(model),
        **levels(),
    )


EXEMPT.update(
    {
        "jax_patterns.lm.TwoLevelModel": "a Protocol: the user implements it (`two_level_step_of` checks a model)",
        "jax_patterns.lm.TwoLevelModel.init_cache": "a Protocol method: the user's code",
        "jax_patterns.lm.TwoLevelModel.backbone": "a Protocol method: the user's code",
        "jax_patterns.lm.TwoLevelModel.depth_init": "a Protocol method: the user's code",
        "jax_patterns.lm.TwoLevelModel.depth": "a Protocol method: the user's code",
    }
)
