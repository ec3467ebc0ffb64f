"""Errors a user can act on: the CLI prints them as one line, with no traceback."""

from __future__ import annotations

import re
from typing import Any


class BgbenchError(Exception):
    """An expected failure (missing data, bad model, ...); the message names the fix."""

    exit_code = 1


class UsageError(BgbenchError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


# A parameter as a library message writes it: `name` or `name=value`, in backticks.
_PARAMETER = re.compile(r"`([a-z_][a-z0-9_]*)(?:=[^`]*)?`")


class ParameterError(UsageError):
    """A library call got an argument it cannot use.

    The message names parameters as a Python caller passed them, in backticks (``"`limit`
    must be positive"``, ``"pass `force=True`"``); ``for_command_line`` rewrites them into
    the flags a command-line user typed. Give the whole message, or its parts:
    ``ParameterError("limit", "must be a positive integer", 0, "drop {limit}")`` says
    ``"`limit` must be a positive integer, got 0; drop `limit`"`` (``{name}`` in ``fix``
    names another parameter) and keeps the parameter in ``parameter``.
    """

    def __init__(self, message: str, problem: str | None = None, value: Any = None,
                 fix: str = "") -> None:
        self.parameter: str | None = None
        if problem is not None:
            self.parameter = message
            got = "" if value is None else f", got {value!r}"
            fix = "; " + fix.format_map(_Backticked()) if fix else ""
            message = f"`{message}` {problem}{got}{fix}"
        super().__init__(message)

    def for_command_line(self, flags: dict[str, str] | None = None) -> UsageError:
        """The same error in flag names: `name` and `name=value` become ``--name``
        (underscores as dashes) unless ``flags`` maps ``name`` to another flag."""
        flags = flags or {}

        def flag(match: re.Match[str]) -> str:
            name = match.group(1)
            return flags.get(name, "--" + name.replace("_", "-"))

        return UsageError(_PARAMETER.sub(flag, str(self)))


class _Backticked(dict):
    def __missing__(self, key: str) -> str:
        return f"`{key}`"
