"""The one ParameterError: a whole message or its parts, and its command-line spelling."""

from __future__ import annotations

import pickle

from bgbench import errors
from bgbench.harness import params


def test_the_harness_raises_the_one_parameter_error():
    assert params.ParameterError is errors.ParameterError
    try:
        params.check_positive("batch_size", 0)
    except errors.ParameterError as err:
        assert str(err) == "`batch_size` must be a positive integer, got 0"
        assert err.parameter == "batch_size"
    else:
        raise AssertionError("check_positive accepted 0")


def test_parts_name_the_parameter_the_value_and_the_fix():
    err = errors.ParameterError("limit", "is above the test set", 99, "drop {limit} or lower it")
    assert str(err) == "`limit` is above the test set, got 99; drop `limit` or lower it"
    assert str(err.for_command_line()) == "--limit is above the test set, got 99; drop --limit or lower it"
    assert str(err.for_command_line({"limit": "-n"})).startswith("-n is above")


def test_a_whole_message_is_kept_and_survives_pickling():
    err = errors.ParameterError("`out_dir` exists; pass `force=True`")
    assert err.parameter is None and isinstance(err, errors.UsageError)
    assert str(err.for_command_line({"out_dir": "--out"})) == "--out exists; pass --force"
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
