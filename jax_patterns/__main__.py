"""`python -m jax_patterns {show,check,bench,train}`; see `jax_patterns._cli`."""

from jax_patterns._cli import main

raise SystemExit(main())
