"""Errors a user can act on: the CLI prints them as one line, with no traceback."""


class BgbenchError(Exception):
    """An expected failure (missing data, bad model, ...); the message names the fix."""

    exit_code = 1


class UsageError(BgbenchError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2
