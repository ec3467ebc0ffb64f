"""Errors about an argument's value, built from its parts.

The library names its parameters (```limit` must be a positive integer``); ``bgbench eval``
rewrites them into its flags (``--limit must be ...``) with ``for_command_line``, as every
command does with ``bgbench.errors.ParameterError``.
"""

from __future__ import annotations

from typing import Any

from bgbench import errors


class ParameterError(errors.ParameterError):
    """``<parameter> <problem>, got <value>; <fix>``; ``{name}`` in ``fix`` names another
    parameter."""

    def __init__(self, parameter: str, problem: str, value: Any = None, fix: str = ""):
        self.parameter = parameter
        got = "" if value is None else f", got {value!r}"
        fix = "; " + fix.format_map(_Backticked()) if fix else ""
        super().__init__(f"`{parameter}` {problem}{got}{fix}")


class _Backticked(dict):
    def __missing__(self, key: str) -> str:
        return f"`{key}`"


def check_positive(name: str, value: int | None) -> None:
    """``value`` (where given) must be a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ParameterError(name, "must be a positive integer", value)
