"""Continuous batching: requests decode in slots, each on its own timeline of the pattern, one compiled chunk.

`generate` decodes a batch in lockstep: every example sits at the same step and
the batch ends with its slowest example. `Engine` gives each slot its own step
into one pattern (`pattern_provider.get_pattern(max_timesteps)`), its own
prompt, length (EOS countdown), key and sampling settings. A chunk program
advances every live slot `chunk_steps` steps of its own timeline; between
chunks (one host sync each) finished requests hand out their last frames and
free slots take the next waiting requests: a batch-of-one prefill (the first
call of `generate` for that prompt, one program per prompt bucket) and an
insert of its state into the slot.

Each request's codes equal `generate` of that request alone with the engine's
pattern: the slot runs the same per-example steps (`_decode`'s first step in
the prefill, then one step per iteration, with the prompt's later steps fed as
known tokens, as `generate` does with `prompt_lengths`).
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

from jax_patterns._checks import check_flag, check_int, check_key
from jax_patterns.lm import _decode
from jax_patterns.lm._decode import UNKNOWN, Config, StepInfo
from jax_patterns.lm._sampling import Sampling, sample_next_token, settings


class SlotCarry(tp.NamedTuple):
    """The engine's device state: every field has the slot axis first."""

    seq: tp.Any  # [B, K, S] int32, UNKNOWN where not yet written
    state: tp.Any  # the step function's state, leaves [B, ...]
    offset: tp.Any  # [B] int32: each slot's next step
    lengths: tp.Any  # [B] int32: frames before the EOS (the request's max_timesteps until then)
    prompt_lengths: tp.Any  # [B] int32
    needed: tp.Any  # [B, T + 1] int32: the EOS countdown table (`_decode._needed_steps`)
    key: tp.Any  # [B] PRNG keys: each request's own
    sampling: Sampling  # [B] arrays
    active: tp.Any  # [B] bool: the slot holds a request
    reset: tp.Any  # [B] bool: the slot took a new request since the last step


def _finished(cfg: Config, carry: tp.Any) -> jax.Array:
    """`[B]`: each slot's request is complete (its frames before its length written, or the pattern's end)."""
    needed = jnp.take_along_axis(carry.needed, carry.lengths[:, None], axis=1)[:, 0]
    return (needed < carry.offset) | (carry.offset >= len(cfg.pattern))


def _slot_step(step_fn: tp.Callable, cfg: Config, carry: SlotCarry) -> SlotCarry:
    """One step of every live slot's own timeline: `_decode._step` with one offset per slot."""
    seq, offset, lengths = carry.seq, carry.offset, carry.lengths
    batch, n_q, steps = seq.shape
    running = carry.active & ~_finished(cfg, carry)
    at = jnp.clip(offset, 1, steps - 1)
    timestep_table, _, after_table = _decode.tables(cfg.pattern)
    timestep = jnp.asarray(timestep_table).T[at]  # [B, K]
    current = jnp.take_along_axis(seq, at[:, None, None], axis=2)[..., 0]  # [B, K]
    known = current != UNKNOWN
    special = (timestep < 0) | (timestep >= lengths[:, None])
    keys = jax.vmap(jax.random.fold_in)(carry.key, at)
    tokens = jnp.take_along_axis(seq, (at - 1)[:, None, None], axis=2)  # [B, K, 1]
    info = StepInfo(at, special, known, keys, carry.reset)
    out, state = _decode._call(step_fn, cfg, carry.state, tokens, info, carry.sampling.cfg_coef)
    _decode._check_output(out, cfg, batch, n_q)
    if cfg.step_returns == "tokens":
        token = out.astype(jnp.int32)
    else:
        values = carry.sampling

        def sample(logits, key, temp, top_k, top_p):  # a batch of one, exactly as `generate` alone samples
            return sample_next_token(logits[None], key, cfg.use_sampling, temp[None], top_k[None], top_p[None])[0]

        token = jax.vmap(sample)(out, keys, values.temp, values.top_k, values.top_p)
    if cfg.eos_token is not None:
        generated = (timestep[:, 0] >= carry.prompt_lengths) & (timestep[:, 0] < lengths)
        hit = running & generated & (token[:, 0] == cfg.eos_token)
        lengths = jnp.where(hit, jnp.minimum(lengths, timestep[:, 0]), lengths)
    fill = jnp.full((batch, n_q), cfg.special_token, jnp.int32)
    if cfg.fill_after is not None:
        fill = jnp.where(jnp.asarray(after_table).T[at], jnp.int32(cfg.fill_after), fill)
    token = jnp.where(special, fill, token)
    token = jnp.where(known | ~running[:, None], current, token)
    seq = seq.at[jnp.arange(batch), :, at].set(token)
    return carry._replace(
        seq=seq,
        state=state,
        offset=offset + running.astype(jnp.int32),
        lengths=lengths,
        reset=jnp.zeros_like(carry.reset),
    )


def _slot_codes(cfg: Config, carry: SlotCarry) -> tuple[jax.Array, jax.Array]:
    """Each slot's codes `[B, K, T]` (fill past its length) and its complete leading frames `[B]`."""
    codes, _, _ = cfg.pattern.revert_pattern_sequence(carry.seq, UNKNOWN)
    timesteps = cfg.pattern.timesteps
    past = jnp.arange(timesteps)[None, None, :] >= carry.lengths[:, None, None]
    codes = jnp.where(past, jnp.int32(cfg.special_token), codes)
    complete = jnp.all(codes != UNKNOWN, axis=1)  # [B, T]
    ready = jnp.where(jnp.all(complete, axis=1), timesteps, jnp.argmin(complete, axis=1)).astype(jnp.int32)
    return codes, ready


@functools.partial(jax.jit, static_argnames=("cfg", "chunk_steps"), donate_argnums=(1,))
def _run_chunk(step_fn, carry: SlotCarry, waiting: jax.Array, *, cfg: Config, chunk_steps: int) -> tuple:
    """Up to `chunk_steps` steps of every live slot; then what the host reads: codes, ready frames, finished, lengths.

    The chunk ends early when no slot is running, or when a request finishes while others wait for a slot
    (`waiting`): a free slot never idles for the rest of a chunk.
    """
    done_before = _finished(cfg, carry) | ~carry.active

    def going(state: tuple) -> jax.Array:
        i, c = state
        finished = _finished(cfg, c) | ~c.active
        return (i < chunk_steps) & ~jnp.all(finished) & ~(waiting & jnp.any(finished & ~done_before))

    steps, carry = jax.lax.while_loop(
        going, lambda state: (state[0] + 1, _slot_step(step_fn, cfg, state[1])), (jnp.int32(0), carry)
    )
    codes, ready = _slot_codes(cfg, carry)
    return carry, (codes, ready, _finished(cfg, carry) & carry.active, carry.lengths, steps)


@functools.partial(jax.jit, static_argnames=("cfg",))
def _prefill(step_fn, state, codes, prompt_lengths, limit, key, sampling, *, cfg: Config) -> _decode.Carry:
    """A request alone: its sequence, then `generate`'s first call (the prompt's first `cfg.start` steps)."""
    carry = _decode._initial(cfg, codes, prompt_lengths, state, key, sampling)
    # the countdown table serves EOS and the request's own max_timesteps alike: made with or without EOS
    needed = _decode._needed_steps(cfg, carry.prompt_lengths)
    return _decode._step(step_fn, cfg, carry._replace(lengths=limit, needed=needed), True)


@functools.partial(jax.jit, donate_argnums=(0,))
def _insert(carry: SlotCarry, one: _decode.Carry, slot: jax.Array) -> SlotCarry:
    """Puts a prefilled request (a batch of one) into `slot`: every field's row `slot` replaced."""

    def put(rows: jax.Array, row: jax.Array) -> jax.Array:
        return jax.lax.dynamic_update_index_in_dim(rows, row.reshape(rows.shape[1:]), slot, 0)

    return SlotCarry(
        seq=put(carry.seq, one.seq),
        state=jax.tree.map(put, carry.state, one.state),
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
    sampling: Sampling
    key: jax.Array
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
    tokens, sampling settings and key. A chunk advances every live slot by
    `chunk_steps` steps (one compiled program for the whole workload; one host
    sync per chunk, none per step; a chunk ends early when a request finishes
    while others wait, so a free slot never idles for the rest of a chunk).
    Between chunks, finished requests free their slots and waiting requests
    enter them: a prefill runs the request's prompt
    alone (`generate`'s first call, compiled once per prompt bucket: the prompt
    length rounded down to `prompt_buckets`, by default 0 and the powers of 2;
    the prompt's later steps are fed one per step, as known tokens), and an
    insert copies its state into the slot.

    Exact: each request's frames equal `generate` of that request alone
    (`lm.generate(step_fn, init_state(1), pattern, prompt[None], ..., key=k)`,
    with `eos_token`, `fill_after`, `use_sampling` and its sampling settings),
    whatever the arrival order, slot count and chunk size, provided the step
    function's rows are independent. A request's key `k` is the `key` given to
    `submit`, else `jax.random.fold_in(engine key, request id)`. A request's
    `max_timesteps` below the engine's caps its length as an EOS at that frame
    would (for a delayed pattern that is `generate` with `get_pattern(max_timesteps)`).

    The step function is called as `generate` calls it, on `[B, K, 1]` (B =
    slots); with `step_info=True` its `StepInfo` holds each slot's step `[B]`
    and `reset [B]`, the slots that took a new request since the last call.
    Classifier-free guidance is not supported by the engine (`cfg_coef`).

    Args:
      step_fn: `(state, tokens [B, K, n]) -> (logits [B, K, card], state)`, as for `generate`.
      init_state: `batch -> state`, every leaf with the batch (slot) axis first.
      pattern_provider: the pattern family; the engine uses `get_pattern(max_timesteps)`.
      slots: decode slots B (>= 1).
      max_timesteps: the longest request, in frames.
      special_token, eos_token, fill_after, use_sampling, step_info, step_returns: as for `generate`.
      chunk_steps: steps per chunk (>= 1): a finished slot waits at most this long for a new request.
      key: the engine's PRNG key (requests' keys derive from it); default `jax.random.key(0)`.
      prompt_buckets: prompt lengths the prefill is compiled for (0 always included).

    Raises:
      ValueError / TypeError: bad sizes or ids; a state whose leaves lack the slot axis.
    """

    def __init__(
        self,
        step_fn: tp.Callable,
        init_state: tp.Callable[[int], tp.Any],
        pattern_provider: tp.Any,
        *,
        slots: int,
        max_timesteps: int,
        special_token: int,
        eos_token: int | None = None,
        fill_after: int | None = None,
        chunk_steps: int = 16,
        use_sampling: bool = False,
        step_info: bool = False,
        step_returns: str = "logits",
        key: jax.Array | None = None,
        prompt_buckets: tp.Sequence[int] | None = None,
    ):
        from jax_patterns.lm._generate import fitting_step_fn, token_ids

        self.slots = check_int("slots", slots, minimum=1)
        self.max_timesteps = check_int("max_timesteps", max_timesteps, minimum=1)
        self.chunk_steps = check_int("chunk_steps", chunk_steps, minimum=1)
        special_token, eos_token, fill_after = token_ids(special_token, eos_token, fill_after, step_returns)
        if not callable(init_state):
            raise TypeError(f"`init_state` must be callable (batch -> state), got {type(init_state).__name__}")
        if not hasattr(pattern_provider, "get_pattern"):
            raise TypeError(f"`pattern_provider` must be a pattern provider, got {type(pattern_provider).__name__}")
        self.pattern = pattern_provider.get_pattern(self.max_timesteps)
        self._fn = fitting_step_fn(step_fn, self.pattern)
        self._cfg = Config(
            pattern=self.pattern,
            special_token=special_token,
            start=0,
            use_sampling=check_flag("use_sampling", use_sampling),
            eos_token=eos_token,
            step_info=check_flag("step_info", step_info),
            step_returns=step_returns,
            per_example_prompts=True,
            fill_after=fill_after,
        )
        self._init_state = init_state
        state = init_state(self.slots)
        _leading(state, self.slots, "the engine")
        self._one_state = init_state(1)  # the prefill's starting state, made once (a prefill never changes it)
        _leading(self._one_state, 1, "the engine's prefill")
        buckets = {0} | ({2**i for i in range(self.max_timesteps.bit_length())} if prompt_buckets is None else set())
        for i, b in enumerate(prompt_buckets or ()):
            buckets.add(check_int(f"prompt_buckets[{i}]", b, minimum=0))
        self.prompt_buckets = tuple(sorted(b for b in buckets if b < self.max_timesteps))
        self._key = jax.random.key(0) if key is None else check_key("key", key)
        timesteps, steps, n_q = self.max_timesteps, len(self.pattern), self.pattern.n_q
        empty = settings(Sampling(), self.slots)
        self._carry = jax.device_put(
            SlotCarry(
                seq=np.full((self.slots, n_q, steps), UNKNOWN, np.int32),
                state=state,
                offset=np.zeros(self.slots, np.int32),
                lengths=np.zeros(self.slots, np.int32),
                prompt_lengths=np.zeros(self.slots, np.int32),
                needed=np.full((self.slots, timesteps + 1), -1, np.int32),
                key=jax.random.split(self._key, self.slots),
                sampling=Sampling(empty.temp, empty.top_k, empty.top_p, None),
                active=np.zeros(self.slots, bool),
                reset=np.zeros(self.slots, bool),
            )
        )
        self._waiting: collections.deque[_Request] = collections.deque()
        self._in_slot: list[_Request | None] = [None] * self.slots
        self._next_id = 0
        self.chunks = 0
        """Chunks run so far."""
        self.prefills = 0
        """Requests prefilled so far."""
        self.steps = 0
        """Decode steps run so far (each advances every live slot by one step)."""
        self.entered: dict[int, float] = {}
        """`time.perf_counter()` when each request entered a slot (its prefill was dispatched)."""

    def _start(self, prompt_len: int) -> tuple[int, int]:
        """The prefill's bucket for a prompt of `prompt_len` frames and the step its first call writes."""
        from jax_patterns.lm._generate import _start_step

        bucket = max(b for b in self.prompt_buckets if b <= prompt_len)
        start = _start_step(self.pattern, bucket, False)
        if start > _start_step(self.pattern, prompt_len, False):  # not an earlier start: `generate`'s
            start = _start_step(self.pattern, prompt_len, True)  # per-example one (the earliest over lengths <= T0)
        return bucket, start

    def submit(
        self,
        prompt: tp.Any,
        *,
        max_timesteps: int | None = None,
        sampling: Sampling | None = None,
        key: jax.Array | None = None,
    ) -> int:
        """Queues a request; returns its id (0, 1, 2, ... in submission order).

        Args:
          prompt: `[K, T0]` integer codes, `0 <= T0 < max_timesteps`.
          max_timesteps: this request's length limit (default and at most the engine's).
          sampling: its `lm.Sampling` (scalars; `cfg_coef` must be None), default `lm.Sampling()`.
          key: its PRNG key; default `jax.random.fold_in(engine key, id)`.

        Raises:
          ValueError / TypeError: a prompt of the wrong K or rank, non-integer codes, a prompt that does not
            fit, a `max_timesteps` beyond the engine's, bad sampling settings.
        """
        codes = np.asarray(jax.device_get(prompt)) if prompt is not None else None
        n_q = self.pattern.n_q
        if codes is None or codes.ndim != 2 or codes.shape[0] != n_q:
            raise ValueError(f"`prompt` must be codes [K={n_q}, T0], got {None if codes is None else codes.shape}")
        if codes.dtype == np.bool_ or not np.issubdtype(codes.dtype, np.integer):
            raise TypeError(f"`prompt` must hold integer codes, got dtype {codes.dtype}")
        limit = self.max_timesteps if max_timesteps is None else check_int("max_timesteps", max_timesteps, minimum=1)
        if limit > self.max_timesteps:
            raise ValueError(f"`max_timesteps`={limit} is beyond the engine's max_timesteps={self.max_timesteps}")
        prompt_len = codes.shape[1]
        if prompt_len >= limit:
            raise ValueError(f"`prompt` has T0={prompt_len} frames; expected fewer than max_timesteps={limit}")
        if codes.size and (codes.min() < 0 or np.any(codes == self._cfg.special_token)):
            raise ValueError(f"`prompt` codes must be >= 0 and differ from `special_token`={self._cfg.special_token}")
        sampling = Sampling() if sampling is None else sampling
        if not isinstance(sampling, Sampling):
            raise TypeError(f"`sampling` must be an lm.Sampling, got {type(sampling).__name__}")
        if sampling.cfg_coef is not None:
            raise ValueError("`sampling.cfg_coef`: the engine does not support classifier-free guidance; use None")
        checked = settings(sampling, 1)
        rid = self._next_id
        self._next_id += 1
        padded = np.zeros((1, n_q, self.max_timesteps), np.int32)
        padded[0, :, :prompt_len] = codes
        request_key = jax.random.fold_in(self._key, rid) if key is None else check_key("key", key)
        self._waiting.append(_Request(rid, padded, prompt_len, limit, checked, request_key))
        return rid

    def _fill(self) -> None:
        """Free slots take waiting requests: a prefill and an insert each (dispatched, not awaited)."""
        for slot in range(self.slots):
            if self._in_slot[slot] is not None or not self._waiting:
                continue
            request = self._waiting.popleft()
            _, start = self._start(request.prompt_len)
            cfg = dataclasses.replace(self._cfg, start=start)
            args = jax.device_put(
                (
                    self._one_state,
                    request.codes,
                    np.asarray([request.prompt_len], np.int32),
                    np.asarray([request.limit], np.int32),
                    request.sampling,
                )
            )
            one = _prefill(self._fn, args[0], args[1], args[2], args[3], request.key, args[4], cfg=cfg)
            self._carry = _insert(self._carry, one, jax.device_put(np.int32(slot)))
            self._in_slot[slot] = request
            self.prefills += 1
            self.entered[request.rid] = time.perf_counter()

    def __iter__(self) -> tp.Iterator[tuple[int, np.ndarray, bool]]:
        """Runs chunks until every submitted request is finished; yields `(request id, frames [K, n], finished)`.

        Frames come in order per request, as soon as they are complete; the last
        yield of a request has `finished=True` (its total is its length: the EOS
        frame or its `max_timesteps`). Requests submitted while iterating are served too.
        """
        while self._waiting or any(r is not None for r in self._in_slot):
            self._fill()
            waiting = jax.device_put(np.bool_(bool(self._waiting)))
            self._carry, out = _run_chunk(self._fn, self._carry, waiting, cfg=self._cfg, chunk_steps=self.chunk_steps)
            self.chunks += 1
            codes, ready, finished, lengths, steps = jax.device_get(out)  # the chunk's one host sync
            self.steps += int(steps)
            for slot, request in enumerate(self._in_slot):
                if request is None:
                    continue
                done = bool(finished[slot])
                upto = int(lengths[slot]) if done else min(int(ready[slot]), int(lengths[slot]))
                if upto > request.sent or done:
                    frames = np.array(codes[slot, :, request.sent : max(upto, request.sent)])
                    request.sent = max(upto, request.sent)
                    yield request.rid, frames, done
                if done:  # the slot stays finished (frozen) on the device until a request is inserted
                    self._in_slot[slot] = None
