"""Errors about an argument's value, named as the caller spelled it.

The library names its parameters (``limit must be positive``); ``bgbench eval`` renames
them to its flags (``--limit must be positive``) with ``ParameterError.renamed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bgbench.errors import UsageError


class _Names(dict):
    def __missing__(self, key: str) -> str:
        return key


class ParameterError(UsageError):
    """``<parameter> <problem>, got <value>; <fix>``; ``{name}`` in ``fix`` is another parameter."""

    def __init__(self, parameter: str, problem: str, value: Any = None, fix: str = ""):
        self.parameter = parameter
        self.problem = problem
        self.value = value
        self.fix = fix
        super().__init__(self.message({}))

    def message(self, names: Mapping[str, str]) -> str:
        """The message with each parameter called by its entry in ``names`` (else its own name)."""
        names = _Names(names)
        got = "" if self.value is None else f", got {self.value!r}"
        fix = f"; {self.fix.format_map(names)}" if self.fix else ""
        return f"{names[self.parameter]} {self.problem}{got}{fix}"

    def renamed(self, names: Mapping[str, str]) -> UsageError:
        """The same error with the parameters renamed, e.g. to command-line flags."""
        return UsageError(self.message(names))


def check_positive(name: str, value: int | None) -> None:
    """``value`` (where given) must be a positive integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ParameterError(name, "must be a positive integer", value)
