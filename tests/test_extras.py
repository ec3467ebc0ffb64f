"""What a user sees when an optional part is missing or broken: one line naming the fix."""

import subprocess
import sys
import textwrap

import pytest

from bgbench.extras import missing_dependency_message

# Runs the CLI (or any code) in a fresh interpreter where the named modules fail to import
# the way they do when not installed, or with a given ImportError.
_PRELUDE = textwrap.dedent("""
    import sys
    BLOCKED, BROKEN = {blocked!r}, {broken!r}

    class Finder:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            if name in BROKEN:
                raise ImportError(BROKEN[name])
            return None

    sys.meta_path.insert(0, Finder())
""")


def _python(code: str, blocked=(), broken=None):
    source = _PRELUDE.format(blocked=tuple(blocked), broken=dict(broken or {})) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          timeout=120)


def _cli(*args, blocked=()):
    return _python(f"from bgbench.cli import main\nsys.exit(main({list(args)!r}))", blocked)


def test_train_without_torch_is_one_line_naming_the_extra(tmp_path):
    result = _cli("train", "--dataset", "mnist", "--method", "traditional", "--preset", "quick",
                  "--out", str(tmp_path / "run"), blocked=("torch", "torchvision"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "bgbench train: error: torch is not installed: this needs bgbench's `train` extra "
        "(pip install 'bgbench[train]')"]


def test_eval_without_onnxruntime_names_both_runtimes(tmp_path):
    result = _cli("eval", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "r"),
                  blocked=("onnxruntime", "torch"))
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert "onnxruntime is not installed" in line
    assert "'bgbench[cpu]'" in line and "'bgbench[gpu]'" in line


def test_other_missing_modules_are_not_disguised():
    assert missing_dependency_message(ModuleNotFoundError("x", name="numpy")) is None
    assert missing_dependency_message(ModuleNotFoundError("x", name="torchvision.ops")) is not None


@pytest.mark.slow
def test_extension_that_does_not_load_warns_with_the_reason():
    reason = "libc10_cuda.so: cannot open shared object file: No such file or directory"
    result = _python("""
        import warnings
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import bgbench.ops as ops
        print(ops.HAVE_EXTENSION)
        for w in caught:
            print(w.category.__name__, w.message)
    """, broken={"bgbench._C": reason})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "False"
    [warning] = [line for line in lines[1:] if "bgbench._C" in line]
    assert warning.startswith("RuntimeWarning bgbench._C is built but does not load")
    assert reason in warning and "train" in warning
