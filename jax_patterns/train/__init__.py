"""jax_patterns.train: training at scale on packed rows (grain, jax.distributed, orbax-checkpoint).

`python -m jax_patterns train` is the command; these are its parts:
`MarkovCodes` (a synthetic code corpus), `input_pipeline` (grain: segment,
pack, batch), `train` (the data-parallel loop with checkpoints) and `launch`
(P local processes joined by `jax.distributed`). Needs the `train` extra
(grain, optax, orbax-checkpoint).
"""

from jax_patterns.train._command import launch as launch
from jax_patterns.train._data import MarkovCodes as MarkovCodes
from jax_patterns.train._data import input_pipeline as input_pipeline
from jax_patterns.train._loop import Options as Options
from jax_patterns.train._loop import train as train

__all__ = ("MarkovCodes", "Options", "input_pipeline", "launch", "train")
