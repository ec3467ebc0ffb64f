"""Which of bgbench's optional extras provides which import, so a missing one names its fix.

The base install evaluates without torch; ``train`` adds training and export, and exactly one
of ``cpu`` and ``gpu`` provides onnxruntime (the two cannot share an environment).
"""

from __future__ import annotations

# Top-level module -> the extra that installs it.
EXTRA_OF_MODULE: dict[str, str] = {
    "torch": "train",
    "torchvision": "train",
    "onnxscript": "train",
    "tqdm": "train",
    "onnxruntime": "cpu",
}


def missing_dependency_message(err: ModuleNotFoundError) -> str | None:
    """A one-line fix for an import that failed because an extra is not installed, else None."""
    module = (err.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    if module == "onnxruntime":
        return ("onnxruntime is not installed: pip install 'bgbench[cpu]' "
                "(or 'bgbench[gpu]' for onnxruntime-gpu and the CUDA provider)")
    return f"{module} is not installed: this needs bgbench's `{extra}` extra (pip install 'bgbench[{extra}]')"
