import subprocess
import sys

import pytest

from bgbench.cli import COMMANDS, main


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "bgbench", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_help_lists_every_command():
    result = _run("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert "usage: bgbench" in capsys.readouterr().out


def test_usage_error_exit_code_two():
    result = _run("data", "prepare", "--dataset", "cifar10")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_expected_failure_is_one_line_without_traceback(tmp_path):
    result = _run("backgrounds", "show", "--out", str(tmp_path / "g.png"),
                  "--data-root", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "bgbench data prepare" in lines[0]


def test_bad_output_name_is_a_usage_error(tmp_path):
    result = _run("backgrounds", "show", "--out", str(tmp_path / "g.jpg"))
    assert result.returncode == 2 and ".png" in result.stderr


def test_backgrounds_list(capsys):
    assert main(["backgrounds", "list"]) == 0
    out = capsys.readouterr().out
    assert "stripes" in out and "207" in out and "b34bbc2d70e8d89d" in out


@pytest.mark.realdata
def test_gallery_png(real_data_root, tmp_path):
    out = tmp_path / "gallery.png"
    assert main(["backgrounds", "show", "--out", str(out), "--samples", "2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["backgrounds", "show", "--out", str(out)]) == 2  # no silent overwrite
