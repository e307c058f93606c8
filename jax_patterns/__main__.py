"""`python -m jax_patterns {show,check}`; see `jax_patterns._cli`."""

from jax_patterns._cli import main

raise SystemExit(main())
