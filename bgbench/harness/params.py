"""Checks of an argument's value, raising ``bgbench.errors.ParameterError`` built from its
parts (```limit` must be a positive integer, got 0``), which ``bgbench eval`` rewrites into
its flags (``--limit must be ...``) with ``for_command_line``, as every command does."""

from __future__ import annotations

from bgbench.errors import ParameterError

__all__ = ["ParameterError", "check_positive"]


def check_positive(name: str, value: int | None) -> None:
    """``value`` (where given) must be a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ParameterError(name, "must be a positive integer", value)
