"""The training loop of `python -m jax_patterns train`: data parallel over every device of every process.

One program for all: a process joins `jax.distributed` when given a
coordinator, builds a mesh over all devices of all processes with one `data`
axis, and feeds its own rows of each global batch
(`jax.make_array_from_process_local_data`). Every process runs the same grain
pipeline and keeps its slice of the global batch, so the batches, and so the
losses, are those of a single process with all the devices. Parameters and
optimizer state are replicated; the loss is `lm.fused_packed_cross_entropy` on
`CodecLM`'s trunk and heads run with segment ids and positions (packed or
padded rows alike; `--loss unfused` computes `lm.packed_cross_entropy` on the
logits instead).

Checkpoints (orbax) hold the model, the optimizer state and the grain
iterator's state: a run started again with the same directory continues from
the last one, and its losses are those of a run that never stopped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import sys
import threading
import time
import typing as tp

import numpy as np

import jax_patterns as jp
from jax_patterns._checks import N_Q_MAX, check_flag, check_int
from jax_patterns.train._data import CARD_MAX, MarkovCodes, check_seed, input_pipeline

NUM_HEADS = 4
"""The example model's attention heads: `dim` must be a multiple of it."""

LOSSES = ("fused", "unfused")


def check_address(name: str, address: tp.Any) -> str:
    """`address` as HOST:PORT with a port in [1, 65535] (jax.distributed's own error is a traceback).

    Raises:
      TypeError: not a str.
      ValueError: naming `name`, when it is not HOST:PORT.
    """
    if not isinstance(address, str):
        raise TypeError(f"`{name}` must be a HOST:PORT str, got {address!r}")
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"`{name}` must be HOST:PORT with a port in [1, 65535], got {address!r}")
    return address


def finite(value: tp.Any) -> bool:
    """Whether a real number is finite (an int too large for a float is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@dataclasses.dataclass(frozen=True)
class Options:
    """What `train` needs; the CLI flags map one to one. Every field is checked when it is built.

    Raises:
      TypeError: a field of the wrong kind (None for a count, a bool for an int, a float count).
      ValueError: a field out of range (a count below 1, a seed outside [0, 2**32), `stop_after` past `steps`,
        `process_id` outside [0, num_processes), a `dim` not a multiple of 4, a bad coordinator, an unknown loss).
    """

    steps: int
    batch_size: int
    seed: int = 0
    pack: bool = False
    checkpoint_dir: str | None = None
    stop_after: int | None = None
    coordinator: str | None = None
    coordinator_timeout: int = 120  # seconds a process waits to join the run before it exits (code 1, one line)
    num_processes: int = 1
    process_id: int = 0
    log_every: int = 10
    save_every: int = 50
    n_q: int = 4
    card: int = 16
    max_frames: int = 64
    min_frames: int | None = None
    dim: int = 64
    learning_rate: float = 1e-2
    loss: str = "fused"  # "fused": lm.fused_packed_cross_entropy on the trunk and heads; "unfused": on the logits

    def __post_init__(self) -> None:
        checked: dict[str, tp.Any] = {}
        for name in ("steps", "batch_size", "coordinator_timeout", "num_processes", "log_every", "save_every"):
            checked[name] = check_int(name, getattr(self, name), minimum=1)
        checked["n_q"] = check_int("n_q", self.n_q, minimum=1, maximum=N_Q_MAX)
        checked["card"] = check_int("card", self.card, minimum=1, maximum=CARD_MAX)
        checked["max_frames"] = check_int("max_frames", self.max_frames, minimum=1)
        checked["dim"] = check_int("dim", self.dim, minimum=NUM_HEADS)
        if checked["dim"] % NUM_HEADS:
            raise ValueError(f"`dim`={checked['dim']} must be a multiple of the model's {NUM_HEADS} attention heads")
        checked["seed"] = check_seed("seed", self.seed)
        checked["pack"] = check_flag("pack", self.pack)
        checked["process_id"] = check_int("process_id", self.process_id, minimum=0)
        if checked["process_id"] >= checked["num_processes"]:
            raise ValueError(
                f"`process_id`={checked['process_id']} must lie in [0, num_processes={checked['num_processes']})"
            )
        if self.stop_after is not None:
            checked["stop_after"] = check_int("stop_after", self.stop_after, minimum=1, maximum=checked["steps"])
        if self.min_frames is not None:
            checked["min_frames"] = check_int("min_frames", self.min_frames, minimum=1, maximum=checked["max_frames"])
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise TypeError(f"`checkpoint_dir` must name a directory (a str) or be None, got {self.checkpoint_dir!r}")
        if self.checkpoint_dir is not None and not self.checkpoint_dir.strip():
            raise ValueError(f"`checkpoint_dir` must name a directory, got {self.checkpoint_dir!r}")
        if self.coordinator is not None:
            check_address("coordinator", self.coordinator)
        elif checked["num_processes"] != 1:
            raise ValueError(f"`num_processes`={checked['num_processes']} needs a `coordinator` HOST:PORT")
        rate = self.learning_rate
        if isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.integer, np.floating)):
            raise TypeError(f"`learning_rate` must be a float, got {rate!r}")
        if not (finite(rate) and rate >= 0):
            raise ValueError(f"`learning_rate` must be finite and >= 0, got {rate}")
        checked["learning_rate"] = float(rate)
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise ValueError(f'`loss` must be "fused" or "unfused", got {self.loss!r}')
        for name, value in checked.items():
            object.__setattr__(self, name, value)


def _distributed(options: Options) -> None:
    """Joins `jax.distributed`, saying on stderr what it waits for; past `coordinator_timeout` seconds the process
    exits with code 1 and one line (jax's own failure to connect aborts the process with a native stack dump)."""
    import jax

    if options.coordinator is None:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU collectives across processes
    me, timeout, address = options.process_id, options.coordinator_timeout, options.coordinator
    if me == 0:  # process 0 runs the coordinator: HOST must be this machine, and every other process must come
        what, hint = "every process to join", "is HOST this machine, and did every process start?"
    else:
        what, hint = "the coordinator (process 0)", "is process 0 running there?"
    count = options.num_processes
    _say(f"process {me} of {count}: waiting for {what} at {address} (up to {timeout} s, --coordinator-timeout)")

    def give_up() -> None:
        _say(
            f"python -m jax_patterns train: error: process {me} could not join the run at {address} within "
            f"{timeout} s (--coordinator-timeout): {hint}"
        )
        os._exit(1)

    watchdog = threading.Timer(timeout, give_up)
    watchdog.daemon = True
    watchdog.start()
    try:  # jax's own deadline comes later: the watchdog speaks first
        jax.distributed.initialize(address, count, me, initialization_timeout=timeout + 60)
    finally:
        watchdog.cancel()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def train(options: Options, emit: tp.Callable[[dict], None] | None = None) -> list[dict]:
    """Trains the NNX `CodecLM` on `MarkovCodes`; returns the logged records (also printed as JSON by process 0).

    Raises:
      TypeError: `options` not an `Options`, `emit` neither a callable nor None.
      ValueError: a batch size that the devices do not divide, bad step numbers, a
        checkpoint directory that is a file or not writable, or one made with other flags.
      CheckpointError: a checkpoint that could not be saved or restored (raised promptly).
    """
    if not isinstance(options, Options):
        raise TypeError(f"`options` must be a jax_patterns.train.Options, got {type(options).__name__}")
    if emit is not None and not callable(emit):
        raise TypeError(f"`emit` must be a callable taking a record, or None, got {emit!r}")
    if options.checkpoint_dir is not None:
        check_checkpoint_dir(options.checkpoint_dir)
    _distributed(options)
    import jax
    import optax
    from flax import nnx
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from jax_patterns import lm

    if options.loss not in ("fused", "unfused"):
        raise ValueError(f'`--loss` must be "fused" or "unfused", got {options.loss!r}')
    devices, processes = jax.device_count(), jax.process_count()
    if options.batch_size % devices:
        raise ValueError(f"`--batch-size`={options.batch_size} must be a multiple of the {devices} devices")
    if options.stop_after is not None and not 1 <= options.stop_after <= options.steps:
        raise ValueError(f"`--stop-after`={options.stop_after} must lie in [1, --steps={options.steps}]")
    mesh = jax.make_mesh((devices,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))  # XLA places the rest
    rows, replicated = NamedSharding(mesh, P("data")), NamedSharding(mesh, P())
    provider = jp.DelayedPatternProvider(options.n_q)
    special = options.card
    min_frames = options.min_frames or max(1, options.max_frames // 10)
    corpus = MarkovCodes(options.n_q, options.card, min_frames, options.max_frames, seed=options.seed)
    row_steps = jp.segment_steps(provider, options.max_frames)
    model = lm.CodecLM(
        options.n_q,
        options.card,
        dim=options.dim,
        num_layers=2,
        num_heads=NUM_HEADS,
        max_len=row_steps,
        rngs=nnx.Rngs(options.seed),
    )
    graphdef, params = nnx.split(model)
    tx = optax.adamw(options.learning_rate)
    state = jax.device_put({"params": params, "opt_state": tx.init(params)}, replicated)
    dataset = input_pipeline(
        corpus,
        provider,
        batch_size=options.batch_size,
        row_steps=row_steps,
        special_token=special,
        seed=options.seed,
        pack=options.pack,
    )
    iterator = iter(dataset)
    manager, state, first = _restore(options, state, iterator)
    if first > 1:
        _say(f"resumed from the checkpoint of step {first - 1}")

    @jax.jit
    def step(state, batch):
        def loss_fn(params):
            model = nnx.merge(graphdef, params)
            rows = (batch["tokens"], batch["segment_ids"], batch["positions"])
            # codebooks without a target in this batch (short rows, delayed codebooks) are left out of the mean
            if options.loss == "fused":  # the logits [B, K, S, card] are never made whole
                heads, bias = model.head_weights()
                hidden = model.hidden(*rows)
                return lm.fused_packed_cross_entropy(hidden, heads, batch["targets"], bias=bias, skip_empty=True)[0]
            return lm.packed_cross_entropy(model(*rows), batch["targets"], skip_empty=True)[0]

        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
        return {"params": optax.apply_updates(state["params"], updates), "opt_state": opt_state}, loss

    local = options.batch_size // processes
    mine = slice(jax.process_index() * local, (jax.process_index() + 1) * local)
    last = options.steps if options.stop_after is None else options.stop_after
    if manager is not None and jax.process_index() == 0:  # said once, where the checkpoints go
        _say(
            f"saving checkpoints to {os.path.abspath(options.checkpoint_dir or '')} "
            f"(every {options.save_every} steps and step {last}; the 2 latest are kept)"
        )
    records: list[dict] = []
    real = padded = seen = 0  # tokens and padding since the clock started; padding over every step run
    began = time.perf_counter()
    for number in range(first, last + 1):
        batch = next(iterator)
        real += int(np.sum(batch["targets"] != -1))
        padded += int(np.sum(batch["segment_ids"] == 0))
        seen += batch["segment_ids"].size
        arrays = {k: jax.make_array_from_process_local_data(rows, v[mine], v.shape) for k, v in batch.items()}
        with jax.numpy_dtype_promotion("standard"):  # optax mixes Python floats and int32 step counts
            state, loss = step(state, arrays)
        if number % options.log_every == 0 or number == last:
            value = float(loss)  # the one host sync of a logged interval
            record = {
                "step": number,
                "loss": value,
                "tokens_per_s": real / (time.perf_counter() - began),
                "padding_fraction": padded / seen,
            }
            records.append(record)
            if not np.isfinite(value):
                raise FloatingPointError(f"the loss of step {number} is {value}; the run cannot go on")
            if emit is not None and jax.process_index() == 0:
                emit(record)
            _say(f"step {number}/{options.steps}  loss {value:.4f}  {record['tokens_per_s']:.0f} tokens/s")
        if number == first:  # the first step compiles: the clock starts after it
            jax.block_until_ready(loss)
            real, began = 0, time.perf_counter()
        if manager is not None and (number % options.save_every == 0 or number == last):
            import grain
            import orbax.checkpoint as ocp

            args = ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(iterator)
            )
            _guarded(
                f"saving the checkpoint of step {number} to {options.checkpoint_dir!r}",
                functools.partial(manager.save, number, args=args),
            )
    if manager is not None:
        _guarded(f"finishing the checkpoints in {options.checkpoint_dir!r}", manager.wait_until_finished)
        manager.close()
    return records


class CheckpointError(RuntimeError):
    """A checkpoint could not be saved or restored; the run must end (orbax may leave threads waiting)."""


class _Collect(logging.Handler):
    """Collects the errors orbax's worker threads log (they are logged there, not raised to the caller)."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _guarded(what: str, action: tp.Callable[[], tp.Any]) -> tp.Any:
    """Runs a checkpoint `action` so that a failure ends it promptly: raises `CheckpointError`, never hangs.

    orbax runs its writes in worker threads; when one fails, it logs the error
    and `save` may wait for a signal that never comes. The action runs in a
    daemon thread, watched together with the errors those threads log.
    """
    import threading

    failures = _Collect()
    loggers = [logging.getLogger(name) for name in ("absl", "orbax")]
    for logger in loggers:
        logger.addHandler(failures)
    outcome: dict[str, tp.Any] = {}

    def target() -> None:
        try:
            outcome["value"] = action()
        except BaseException as err:  # noqa: BLE001 - handed to the caller
            outcome["error"] = err

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        while worker.is_alive() and not failures.messages:
            worker.join(0.05)
    finally:
        for logger in loggers:
            logger.removeHandler(failures)
    if "error" in outcome or failures.messages:
        cause = outcome.get("error")
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else failures.messages[0]
        raise CheckpointError(f"{what} failed: {detail.splitlines()[0]}") from cause
    return outcome.get("value")


def _restore(options: Options, state: tp.Any, iterator: tp.Any) -> tuple[tp.Any, tp.Any, int]:
    """`(manager, state, first step to run)`: the latest checkpoint's state (the iterator is restored in place)."""
    if options.checkpoint_dir is None:
        return None, state, 1
    import os

    import grain
    import jax
    import orbax.checkpoint as ocp

    folder = os.path.abspath(options.checkpoint_dir)
    made_with = _made_with(options)
    recorded = os.path.join(folder, FLAGS_FILE)
    if os.path.exists(recorded):  # a checkpoint made with other model or data flags cannot be resumed
        with open(recorded) as f:
            before = json.load(f)
        changed = [f"--{k.replace('_', '-')} {before[k]} (now {v})" for k, v in made_with.items() if before.get(k) != v]
        if changed:
            raise ValueError(
                f"`--checkpoint-dir` {options.checkpoint_dir!r} holds a run made with "
                + ", ".join(changed)
                + "; resume with the same flags, or use another directory"
            )
    manager = ocp.CheckpointManager(folder, options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))
    latest = manager.latest_step()
    if latest is None:
        if jax.process_index() == 0:
            with open(recorded, "w") as f:
                json.dump(made_with, f)
        return manager, state, 1
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
    restored = _guarded(
        f"restoring the checkpoint of step {latest} from {options.checkpoint_dir!r}",
        lambda: manager.restore(
            latest,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract), data=grain.checkpoint.CheckpointRestore(iterator)
            ),
        ),
    )
    return manager, restored["state"], latest + 1


FLAGS_FILE = "jax_patterns_train.json"
"""The flags a checkpoint directory's run was made with (model shape and data order), checked on resume."""


def _made_with(options: Options) -> dict:
    keys = ("dim", "max_frames", "n_q", "card", "pack", "seed", "batch_size")
    return {k: getattr(options, k) for k in keys}


def check_checkpoint_dir(path: str) -> None:
    """Refuses a `--checkpoint-dir` that is not a writable directory (or cannot become one), before training.

    Raises:
      ValueError: naming the flag and the reason.
    """
    import os
    import tempfile

    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"`--checkpoint-dir` {path!r} is a file; expected a directory (it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"`--checkpoint-dir` {path!r} is not a writable directory: {err.strerror or err}") from err


def print_record(record: dict) -> None:
    """One JSON line on stdout per logged step (strict JSON: no NaN or Infinity)."""
    print(json.dumps(record, allow_nan=False), flush=True)
