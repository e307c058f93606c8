"""Continuous batching: requests decode in slots, each on its own timeline of the pattern, one compiled chunk.

`generate` decodes a batch in lockstep: every example sits at the same step and
the batch ends with its slowest example. `Engine` gives each slot its own step
into one pattern (`pattern_provider.get_pattern(max_timesteps)`). The decoding
itself is the decode core's (`_decode.step` with one offset per slot and a mask
of live slots); this module only schedules: admission (`submit` checks a
request completely before queueing it), prefill (a batch-of-one first call of
`generate` for the request's prompt, its conditions written first, one program
per prompt bucket), insert (the prefilled rows copied into the slot), chunks,
and the hand-out of frames.

Each request's codes equal `generate` of that request alone with the engine's
pattern: the slot runs the same per-example steps.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time
import typing as tp

import jax
import jax.numpy as jnp
import numpy as np

from jax_patterns._checks import check_int, check_key
from jax_patterns.lm._decode import UNKNOWN, Carry, Config, codes_so_far, finished, initial, step
from jax_patterns.lm._generate import check_prompt, fitting_step, start_step
from jax_patterns.lm._options import DecodeOptions, resolve
from jax_patterns.lm._protocol import as_pytree, guided_conditions_of, input_vocab_of
from jax_patterns.lm._sampling import Sampling, settings


@functools.partial(jax.jit, static_argnames=("cfg",), donate_argnames=("carry",))
def _run_chunk(step_fn, carry: Carry, waiting: jax.Array, chunk_steps: jax.Array, *, cfg: Config) -> tuple:
    """Up to `chunk_steps` steps of every live slot; then what the host reads: codes, ready frames, finished, lengths.

    The chunk ends early when no slot is running, or when a request finishes while others wait for a slot
    (`waiting`): a free slot never idles for the rest of a chunk.
    """
    done_before = finished(cfg, carry) | ~carry.active

    def going(state: tuple) -> jax.Array:
        i, c = state
        done = finished(cfg, c) | ~c.active
        return (i < chunk_steps) & ~jnp.all(done) & ~(waiting & jnp.any(done & ~done_before))

    steps, carry = jax.lax.while_loop(
        going, lambda state: (state[0] + 1, step(step_fn, cfg, state[1])), (jnp.int32(0), carry)
    )
    codes, ready = codes_so_far(cfg, carry)
    return carry, (codes, ready, finished(cfg, carry) & carry.active, jnp.copy(carry.lengths), steps)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _prefill(step_fn, condition_fn, state, conditions, codes, prompt_lengths, limit, key, sampling, *, cfg: Config):
    """A request alone: its conditions written into its rows, its sequence, then `generate`'s first call."""
    if condition_fn is not None:
        if cfg.guidance:  # the null condition's rows after the request's (the model's rule, or zeros)
            conditions = guided_conditions_of(condition_fn, conditions)
        state = condition_fn(state, conditions)
    carry = initial(cfg, codes, prompt_lengths, state, key, sampling, lengths=limit)
    return step(step_fn, cfg, carry, first=True)


@functools.partial(jax.jit, static_argnames=("rows",), donate_argnums=(0,))
def _insert(carry: Carry, one: Carry, slot: jax.Array, *, rows: int) -> Carry:
    """Puts a prefilled request (a batch of one; `rows` state rows) into `slot` (its state rows `slot + r * slots`)."""
    slots = carry.seq.shape[0]

    def put(all_rows: jax.Array, row: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(all_rows, row.reshape(all_rows.shape[1:]), slot, 0)

    def put_state(all_rows: jax.Array, its_rows: jax.Array) -> jax.Array:
        for r in range(rows):  # with guidance: the conditional row, then the null condition's
            all_rows = jax.lax.dynamic_update_index_in_dim(all_rows, its_rows[r], slot + r * slots, 0)
        return all_rows

    return Carry(
        seq=put(carry.seq, one.seq),
        state=jax.tree.map(put_state, carry.state, one.state),
        offset=put(carry.offset, one.offset),
        lengths=put(carry.lengths, one.lengths),
        prompt_lengths=put(carry.prompt_lengths, one.prompt_lengths),
        needed=put(carry.needed, one.needed),
        key=put(carry.key, one.key),
        sampling=jax.tree.map(put, carry.sampling, one.sampling),
        active=put(carry.active, jnp.bool_(True)),
        reset=put(carry.reset, jnp.bool_(True)),
    )


@dataclasses.dataclass
class _Request:
    rid: int
    codes: np.ndarray  # [1, K, T] (the prompt, zero-padded)
    prompt_len: int
    limit: int
    start: int
    sampling: Sampling
    key: jax.Array
    conditions: tp.Any
    sent: int = 0  # frames handed out so far


def _leading(state: tp.Any, batch: int, name: str) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        shape: tuple = tuple(getattr(leaf, "shape", ()))
        if len(shape) == 0 or shape[0] != batch:
            raise ValueError(
                f"`init_state({batch})` has a leaf {jax.tree_util.keystr(path)} of shape {tuple(shape)}; every leaf "
                f"needs the slot axis first ({batch}, ...), which is how {name} resets and refills a slot "
                "(a KV cache's position too: CodecLM.init_cache(batch, per_row=True))"
            )


def _buckets(prompt_buckets: tp.Any, max_timesteps: int) -> tuple[int, ...]:
    """The prompt lengths the prefill is compiled for: 0, and the powers of 2 (or the given lengths)."""
    buckets = {0}
    if prompt_buckets is None:
        buckets |= {2**i for i in range(max_timesteps.bit_length())}
    else:
        if isinstance(prompt_buckets, (str, bytes)) or not isinstance(prompt_buckets, tp.Iterable):
            raise TypeError(f"`prompt_buckets` must be a sequence of ints (prompt lengths), got {prompt_buckets!r}")
        for i, b in enumerate(prompt_buckets):
            buckets.add(check_int(f"prompt_buckets[{i}]", b, minimum=0))
    return tuple(sorted(b for b in buckets if b < max_timesteps))


class Engine:
    """Continuous batching over per-slot pattern timelines: requests in, frames out, one compiled chunk program.

    ```python
    engine = lm.Engine(lm.step_fn_of(model), lambda b: model.init_cache(b, per_row=True),
                       jp.DelayedPatternProvider(K), slots=8, max_timesteps=500, special_token=card, eos_token=eos)
    ids = [engine.submit(prompt) for prompt in prompts]      # [K, T0] each, T0 may be 0
    for rid, frames, finished in engine:                      # frames: int32 [K, n], in order per request
        play(rid, frames)
    ```

    Each slot decodes one request on its own timeline: its own step into
    `pattern_provider.get_pattern(max_timesteps)`, prompt, EOS countdown, fill
    tokens, sampling settings, guidance coefficient, conditions and key. A
    chunk advances every live slot by up to `chunk_steps` steps (one compiled
    program for the whole workload; one host sync per chunk, none per step; a
    chunk ends early when a request finishes while others wait). Between
    chunks, finished requests free their slots and waiting requests enter them:
    a prefill runs the request alone (its conditions written by `condition_fn`,
    then `generate`'s first call, compiled once per prompt bucket: the prompt
    length rounded down to `prompt_buckets`, by default 0 and the powers of 2;
    the prompt's later steps are fed one per step, as known tokens), and an
    insert copies its rows into the slot.

    Exact: each request's frames equal `generate` of that request alone
    (`lm.generate(step_fn, init_state(rows), pattern, prompt[None], options, key=k)`
    with the request's sampling settings, `rows` = 2 under guidance, the state
    conditioned first), whatever the arrival order, slot count and chunk size,
    provided the step function's rows are independent. A request's key `k` is
    the `key` given to `submit`, else `jax.random.fold_in(engine key, request id)`.

    A request's `max_timesteps` `L` below the engine's caps it: its frames
    `>= L` are the special token from the start (the model sees them as
    such; they are never decoded) and it ends once its frames `< L` are
    complete. For delayed and parallel patterns that equals `generate` with
    `get_pattern(L)`; it is not an EOS at frame `L` (an EOS token stays in
    codebook 0's input, which changes what the model sees next).

    Iteration (`for rid, frames, finished in engine`) finishes every state
    change before it yields: a consumer may `break` at any item and iterate
    again later (to submit more, say); nothing is yielded twice or lost, and
    each request yields `finished=True` exactly once.

    Guidance: an engine built with a guidance coefficient (`cfg_coef=` or
    `options.sampling.cfg_coef`) guides every request, each with its own
    coefficient (`submit(sampling=lm.Sampling(cfg_coef=...))`, default the
    engine's); its state has `2 * slots` rows (`init_state(2 * slots)`): slot
    `b`'s conditional row `b` and its null-condition row `slots + b`.

    Args:
      step_fn: `(state, tokens [B, K, n]) -> (logits [B, K, card], state)`, as for `generate`.
      init_state: `batch -> state`, every leaf with the batch (slot) axis first.
      pattern_provider: the pattern family; the engine uses `get_pattern(max_timesteps)`.
      options: an `lm.DecodeOptions` (or its fields, and `Sampling`'s, as keywords).
      slots: decode slots B (>= 1).
      max_timesteps: the longest request, in frames.
      chunk_steps: steps per chunk (>= 1; larger values are clamped to the
        pattern's length): a finished slot waits at most this long for a new request.
      key: the engine's PRNG key (requests' keys derive from it); default `jax.random.key(0)`.
      prompt_buckets: prompt lengths the prefill is compiled for (0 always included).
      condition_fn: optional `(state, conditions) -> state` (`lm.condition_fn_of(model)`):
        writes a request's conditions (`submit(conditions=...)`) into its rows at its prefill.
      history: how many requests `entered` remembers (a long-running server's state stays bounded).

    Raises:
      ValueError / TypeError: bad sizes, ids or settings; a state whose leaves lack the slot axis.
    """

    def __init__(
        self,
        step_fn: tp.Callable,
        init_state: tp.Callable[[int], tp.Any],
        pattern_provider: tp.Any,
        options: DecodeOptions | None = None,
        *,
        slots: int,
        max_timesteps: int,
        chunk_steps: int = 16,
        key: jax.Array | None = None,
        prompt_buckets: tp.Sequence[int] | None = None,
        condition_fn: tp.Callable | None = None,
        history: int = 1024,
        **settings_: tp.Any,
    ):
        self.options = resolve(options, settings_, "Engine")
        self.slots = check_int("slots", slots, minimum=1)
        self.max_timesteps = check_int("max_timesteps", max_timesteps, minimum=1)
        chunk_steps = check_int("chunk_steps", chunk_steps, minimum=1, maximum=None)  # clamped below
        self.history = check_int("history", history, minimum=0)
        if not callable(init_state):
            raise TypeError(f"`init_state` must be callable (batch -> state), got {type(init_state).__name__}")
        if not callable(getattr(pattern_provider, "get_pattern", None)):
            raise TypeError(f"`pattern_provider` must be a pattern provider, got {type(pattern_provider).__name__}")
        self.pattern = pattern_provider.get_pattern(self.max_timesteps)
        self.chunk_steps = min(chunk_steps, len(self.pattern))
        self._fn = fitting_step(step_fn, self.options.step_info, self.pattern)
        self._vocab = input_vocab_of(as_pytree(step_fn, "step_fn"))
        self._condition_fn = None if condition_fn is None else as_pytree(condition_fn, "condition_fn")
        self._rows = 2 if self.options.guidance else 1
        self._default = settings(self.options.sampling, 1)  # the requests' default settings, checked once
        self._cfg = Config(
            pattern=self.pattern,
            special_token=self.options.special_token,
            start=0,
            use_sampling=self.options.use_sampling,
            guidance=self.options.guidance,
            eos_token=self.options.eos_token,
            policy=self.options.policy,
            fill_after=self.options.fill_after,
            countdown=True,
        )
        state = init_state(self.slots * self._rows)
        _leading(state, self.slots * self._rows, "the engine")
        self._one_state = init_state(self._rows)  # the prefill's starting state, made once (a prefill never changes it)
        _leading(self._one_state, self._rows, "the engine's prefill")
        self.prompt_buckets = _buckets(prompt_buckets, self.max_timesteps)
        self._key = jax.random.key(0) if key is None else check_key("key", key)
        self._carry = self._empty(state)
        self._chunk = jax.device_put(np.int32(self.chunk_steps))
        self._waiting: collections.deque[_Request] = collections.deque()
        self._in_slot: list[_Request | None] = [None] * self.slots
        self._outbox: collections.deque[tuple[int, np.ndarray, bool]] = collections.deque()
        self._checked: set = set()
        self._next_id = 0
        self.chunks = 0
        """Chunks run so far."""
        self.prefills = 0
        """Requests prefilled so far."""
        self.steps = 0
        """Decode steps run so far (each advances every live slot by one step)."""
        self.entered: collections.OrderedDict[int, float] = collections.OrderedDict()
        """`time.perf_counter()` when each of the last `history` requests entered a slot (its prefill was
        dispatched)."""

    def _empty(self, state: tp.Any) -> Carry:
        timesteps, steps, n_q, slots = self.max_timesteps, len(self.pattern), self.pattern.n_q, self.slots
        empty = settings(Sampling(cfg_coef=0.0 if self.options.guidance else None), slots)
        return jax.device_put(
            Carry(
                seq=np.full((slots, n_q, steps), UNKNOWN, np.int32),
                state=state,
                offset=np.zeros(slots, np.int32),
                lengths=np.zeros(slots, np.int32),
                prompt_lengths=np.zeros(slots, np.int32),
                needed=np.full((slots, timesteps + 1), -1, np.int32),
                key=jax.random.split(self._key, slots),
                sampling=empty,
                active=np.zeros(slots, bool),
                reset=np.zeros(slots, bool),
            )
        )

    def _start(self, prompt_len: int) -> int:
        """The step the prefill's first call writes for a prompt of `prompt_len` frames (its bucket's start)."""
        bucket = max(b for b in self.prompt_buckets if b <= prompt_len)
        start = start_step(self.pattern, bucket, False)
        if start > start_step(self.pattern, prompt_len, False):  # not an earlier start: `generate`'s
            start = start_step(self.pattern, prompt_len, True)  # per-example one (the earliest over lengths <= T0)
        return start

    def _request_sampling(self, sampling: tp.Any) -> Sampling:
        if sampling is None:
            return self._default
        if not isinstance(sampling, Sampling):
            raise TypeError(f"`sampling` must be an lm.Sampling, got {type(sampling).__name__}")
        if self.options.guidance and sampling.cfg_coef is None:
            sampling = sampling._replace(cfg_coef=self.options.sampling.cfg_coef)
        elif not self.options.guidance and sampling.cfg_coef is not None:
            raise ValueError(
                "`sampling.cfg_coef`: this engine runs without guidance; build it with a guidance coefficient "
                "(`cfg_coef=` or options.sampling.cfg_coef) to guide requests"
            )
        return settings(sampling, 1)

    def _request_conditions(self, conditions: tp.Any) -> tp.Any:
        if self._condition_fn is None:
            if conditions is not None:
                raise ValueError("`conditions` given, but the engine has no `condition_fn` to write them")
            return None
        if conditions is None:
            raise ValueError("`conditions` is None; this engine writes each request's conditions (`condition_fn`)")
        leaves = jax.tree.leaves(conditions)
        if not leaves or any(not hasattr(leaf, "shape") or np.ndim(leaf) == 0 or leaf.shape[0] != 1 for leaf in leaves):
            raise ValueError(
                "`conditions` must be a pytree of arrays, each with a batch axis of 1 first ([1, ...]: one request)"
            )
        return conditions

    def _validate(self, request: _Request) -> None:
        """Traces the request's prefill (once per distinct program) so that it fails here, not mid-iteration."""
        args = self._prefill_args(request)
        leaves = jax.tree.leaves(args)
        signature = (request.start, jax.tree.structure(args), tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves))
        if signature not in self._checked:
            cfg = dataclasses.replace(self._cfg, start=request.start)
            jax.eval_shape(functools.partial(_prefill, cfg=cfg), self._fn, self._condition_fn, *args)
            self._checked.add(signature)

    def _prefill_args(self, request: _Request) -> tuple:
        return (
            self._one_state,
            request.conditions,
            request.codes,
            np.asarray([request.prompt_len], np.int32),
            np.asarray([request.limit], np.int32),
            request.key,
            request.sampling,
        )

    def submit(
        self,
        prompt: tp.Any,
        *,
        max_timesteps: int | None = None,
        sampling: Sampling | None = None,
        key: jax.Array | None = None,
        conditions: tp.Any = None,
    ) -> int:
        """Queues a request, checked completely first (what `generate` refuses, `submit` refuses); returns its id.

        Ids are 0, 1, 2, ... in submission order.

        Args:
          prompt: `[K, T0]` integer codes (host values), `0 <= T0 < max_timesteps`.
          max_timesteps: this request's length limit (default and at most the engine's).
          sampling: its `lm.Sampling` (scalars), default the engine's; `cfg_coef` only on a guided engine.
          key: its PRNG key; default `jax.random.fold_in(engine key, id)`.
          conditions: with `condition_fn`, this request's conditions (a pytree of `[1, ...]` arrays).

        Raises:
          ValueError / TypeError: a prompt of the wrong K or rank, non-integer codes or codes out of range (in
            their own dtype), a prompt that does not fit or that the pattern cannot start from, a
            `max_timesteps` beyond the engine's, bad sampling settings or key, conditions that do not fit.
        """
        if isinstance(prompt, jax.core.Tracer):
            raise TypeError("`prompt` must be concrete codes [K, T0], not a traced value")
        codes = check_prompt(None if prompt is None else np.asarray(jax.device_get(prompt)), self.pattern.n_q,
                             self.options, self._vocab, ndim=2)  # fmt: skip
        limit = self.max_timesteps if max_timesteps is None else check_int("max_timesteps", max_timesteps, minimum=1)
        if limit > self.max_timesteps:
            raise ValueError(f"`max_timesteps`={limit} is beyond the engine's max_timesteps={self.max_timesteps}")
        prompt_len = codes.shape[1]
        if prompt_len >= limit:
            raise ValueError(f"`prompt` has T0={prompt_len} frames; expected fewer than max_timesteps={limit}")
        start = self._start(prompt_len)
        checked = self._request_sampling(sampling)
        request_key = check_key("key", key) if key is not None else None
        padded = np.zeros((1, self.pattern.n_q, self.max_timesteps), np.int32)
        padded[0, :, :prompt_len] = codes
        conditions = self._request_conditions(conditions)
        rid = self._next_id
        if request_key is None:  # an explicit transfer of the id: nothing moves implicitly
            request_key = jax.random.fold_in(self._key, jax.device_put(np.uint32(rid)))
        request = _Request(rid, padded, prompt_len, limit, start, checked, request_key, conditions)
        self._validate(request)
        self._next_id += 1
        self._waiting.append(request)
        return rid

    def _fill(self) -> None:
        """Free slots take waiting requests: a prefill and an insert each (dispatched, not awaited)."""
        for slot in range(self.slots):
            if self._in_slot[slot] is not None or not self._waiting:
                continue
            request = self._waiting.popleft()
            cfg = dataclasses.replace(self._cfg, start=request.start)
            args = jax.device_put(self._prefill_args(request))
            one = _prefill(self._fn, self._condition_fn, *args, cfg=cfg)
            self._carry = _insert(self._carry, one, jax.device_put(np.int32(slot)), rows=self._rows)
            self._in_slot[slot] = request
            self.prefills += 1
            self.entered[request.rid] = time.perf_counter()
            while len(self.entered) > self.history:
                self.entered.popitem(last=False)

    def _chunk_once(self) -> None:
        """One chunk; every state change done, its items queued in the outbox."""
        self._fill()
        waiting = jax.device_put(np.bool_(bool(self._waiting)))
        self._carry, out = _run_chunk(self._fn, self._carry, waiting, self._chunk, cfg=self._cfg)
        self.chunks += 1
        codes, ready, done, lengths, steps = jax.device_get(out)  # the chunk's one host sync
        self.steps += int(steps)
        for slot, request in enumerate(self._in_slot):
            if request is None:
                continue
            finished_now = bool(done[slot])
            upto = int(lengths[slot]) if finished_now else min(int(ready[slot]), int(lengths[slot]))
            if upto > request.sent or finished_now:
                frames = np.array(codes[slot, :, request.sent : max(upto, request.sent)])
                request.sent = max(upto, request.sent)
                self._outbox.append((request.rid, frames, finished_now))
            if finished_now:  # the slot stays finished (frozen) on the device until a request is inserted
                self._in_slot[slot] = None

    def __iter__(self) -> tp.Iterator[tuple[int, np.ndarray, bool]]:
        """Runs chunks until every submitted request is finished; yields `(request id, frames [K, n], finished)`.

        Frames come in order per request, as soon as they are complete; the last
        yield of a request has `finished=True` (its total is its length: the EOS
        frame or its `max_timesteps`). Requests submitted while iterating are
        served too. Every state change is made before an item is yielded, so a
        consumer may leave the loop at any item and iterate again later.
        """
        while True:
            while self._outbox:
                yield self._outbox.popleft()
            if not (self._waiting or any(r is not None for r in self._in_slot)):
                return
            self._chunk_once()
