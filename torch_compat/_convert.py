"""Conversion between audiocraft pattern objects and jax_patterns ones.

audiocraft objects are recognised by class name and attributes (duck typing), so
audiocraft itself need not be installed to convert objects that were unpickled
or built from its file.
"""

from __future__ import annotations

import importlib
import types
import typing as tp

import jax_patterns as jp


def _pattern_from(obj: tp.Any) -> jp.Pattern:
    layout = [[jp.LayoutCoord(int(c[0]), int(c[1])) for c in step] for step in obj.layout]
    starts_empty = len(layout) > 0 and not layout[0]
    return jp.Pattern(layout, timesteps=int(obj.timesteps), n_q=int(obj.n_q), omit_special_token=not starts_empty)


class AudiocraftProvider(jp.CodebooksPatternProvider):
    """Wraps any audiocraft-style provider: `get_pattern` converts its patterns."""

    def __init__(self, provider: tp.Any):
        super().__init__(int(provider.n_q))
        self.provider = provider

    def get_pattern(self, timesteps: int) -> jp.Pattern:
        """The wrapped audiocraft provider's pattern for `timesteps`, as a jax_patterns `Pattern`."""
        return _pattern_from(self.provider.get_pattern(timesteps))


def from_audiocraft(obj: tp.Any) -> tp.Any:
    """Converts an audiocraft provider or `Pattern` into its jax_patterns equivalent.

    Built-in providers map to the jax_patterns class of the same name and
    arguments; any other object with `n_q` and `get_pattern` is wrapped in
    `AudiocraftProvider`. jax_patterns objects are returned unchanged.

    Raises:
      TypeError: `obj` is neither a pattern nor a provider.
    """
    if isinstance(obj, (jp.Pattern, jp.CodebooksPatternProvider)):
        return obj
    name = type(obj).__name__
    if hasattr(obj, "layout") and hasattr(obj, "timesteps") and hasattr(obj, "n_q"):
        return _pattern_from(obj)
    for family in jp.FAMILIES.values():  # each family knows its audiocraft names and arguments
        if name in family.audiocraft_names:
            try:
                return family.from_audiocraft(obj)
            except AttributeError:  # not the attributes of audiocraft's class: wrap it as any provider
                break
    if hasattr(obj, "get_pattern") and hasattr(obj, "n_q"):
        return AudiocraftProvider(obj)
    raise TypeError(f"`obj` of type {name} is neither an audiocraft Pattern nor a pattern provider")


def _audiocraft_module(module: types.ModuleType | None) -> types.ModuleType:
    if module is not None:
        return module
    try:
        return importlib.import_module("audiocraft.modules.codebooks_patterns")
    except ImportError as err:
        raise ImportError(
            "to_audiocraft needs audiocraft's codebooks_patterns module: install audiocraft or pass `module=`"
        ) from err


def to_audiocraft(obj: tp.Any, module: types.ModuleType | None = None) -> tp.Any:
    """Converts a jax_patterns provider or `Pattern` into audiocraft's (from `module`).

    Args:
      obj: a built-in jax_patterns provider or a `Pattern`.
      module: audiocraft's `codebooks_patterns` module (default: imported from
        an installed audiocraft).

    Raises:
      TypeError: `obj` is a custom provider (it has no audiocraft equivalent).
      ValueError: `module` predates a feature `obj` uses (negative or parallel
        `empty_initial` need audiocraft >= 1.3.0).
    """
    ac = _audiocraft_module(module)
    if isinstance(obj, jp.Pattern):
        layout = [[ac.LayoutCoord(c.t, c.q) for c in step] for step in obj.layout]
        return ac.Pattern(layout, timesteps=obj.timesteps, n_q=obj.n_q)
    if isinstance(obj, jp.CodebooksPatternProvider):
        return obj.to_audiocraft(ac)
    raise TypeError(f"`obj` of type {type(obj).__name__} has no audiocraft equivalent")


def load_audiocraft_file(path: str) -> types.ModuleType:
    """Loads audiocraft's `codebooks_patterns.py` by file path (needs only torch)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("audiocraft_codebooks_patterns", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"`path`={path!r} is not a loadable Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
