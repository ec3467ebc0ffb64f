"""onnxruntime execution providers: names, options, GPU libraries, and what a result records.

``resolve_providers(["cuda"], ["device_id=0"])`` gives ``[("CUDAExecutionProvider",
{"device_id": "0"})]``, which ``onnxruntime.InferenceSession(..., providers=...)`` accepts as
is. A provider this onnxruntime lacks is an error that says which package provides it; a
request never silently runs on another provider.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

import onnxruntime as ort

from bgbench.errors import BgbenchError, ParameterError, UsageError

# Short names a user types on the command line; full onnxruntime names are accepted too.
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
# Providers that onnxruntime-gpu brings, and whose CUDA/cuDNN libraries it can preload.
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")

Resolved = list[tuple[str, dict[str, str]]]


def full_name(name: str) -> str:
    """``cuda`` -> ``CUDAExecutionProvider``; a full onnxruntime name is returned unchanged."""
    return PROVIDER_ALIASES.get(name.strip().lower(), name.strip())


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.version(distribution)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _gpu_install_hint() -> str:
    """How to get onnxruntime's GPU providers, given which onnxruntime packages are installed."""
    cpu, gpu = _installed("onnxruntime"), _installed("onnxruntime-gpu")
    if cpu and gpu:
        return ("onnxruntime and onnxruntime-gpu are both installed and overwrite each other's "
                "files; keep only the GPU one: pip uninstall -y onnxruntime onnxruntime-gpu && "
                "pip install 'bgbench[gpu]'")
    if gpu:
        return "this onnxruntime-gpu build does not include it"
    return ("the installed onnxruntime is the CPU-only package; replace it: "
            "pip uninstall -y onnxruntime && pip install 'bgbench[gpu]'")


def parse_provider_options(items: Sequence[str], providers: Sequence[str]) -> dict[str, dict[str, str]]:
    """Parse ``[PROVIDER:]KEY=VALUE`` items into options per full provider name.

    An item without a ``PROVIDER:`` prefix applies to the first of ``providers`` (full names).
    A prefix naming a provider that is not requested, a malformed item or a key given twice
    for one provider is a ``UsageError``.
    """
    options: dict[str, dict[str, str]] = {name: {} for name in providers}
    for item in items:
        key, sep, value = item.partition("=")
        target = providers[0] if providers else None
        if ":" in key:
            prefix, _, key = key.partition(":")
            target = full_name(prefix)
            if target not in options:
                raise ParameterError(f"provider option {item!r} is for {prefix!r}, which is not among the "
                                 f"requested providers ({', '.join(providers)}); add it to `providers`")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"provider option {item!r} is not KEY=VALUE (or PROVIDER:KEY=VALUE), "
                             "e.g. device_id=0 in `provider_options`")
        if target is None:
            raise ParameterError(f"provider option {item!r} given but no provider is requested")
        if key in options[target]:
            raise ParameterError(f"provider option {key!r} is given twice for {target}; give it once")
        options[target][key] = value.strip()
    return options


def preload_gpu_libraries() -> bool:
    """Load the CUDA and cuDNN libraries onnxruntime-gpu needs from the pip-installed
    ``nvidia-*`` packages (``onnxruntime.preload_dlls``), so the CUDA provider works without
    a system-wide CUDA install. Returns False where this onnxruntime has no such function."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return False
    try:
        preload()
    except Exception as err:  # noqa: BLE001 - any loader failure gets the same fix
        raise BgbenchError(f"onnxruntime could not load the CUDA libraries ({err}); install them "
                           "with pip install 'onnxruntime-gpu[cuda,cudnn]' or a CUDA toolkit "
                           "and cuDNN matching onnxruntime-gpu") from None
    return True


def resolve_providers(names: Sequence[str], options: Sequence[str] = ()) -> Resolved:
    """Full provider names with their options, in the order asked, ready for onnxruntime.

    Args:
        names: provider names, short (``cpu``, ``cuda``, ``tensorrt``, ...) or full.
        options: ``[PROVIDER:]KEY=VALUE`` items (see ``parse_provider_options``).

    Raises ``UsageError`` for an empty list, a provider given twice or one this onnxruntime
    does not have (naming the package that has it). Requesting a GPU provider preloads the
    CUDA libraries first (``preload_gpu_libraries``).
    """
    full = [full_name(name) for name in names if name.strip()]
    if not full:
        raise ParameterError("`providers` names no execution provider; use e.g. cpu")
    repeated = sorted({name for name in full if full.count(name) > 1})
    if repeated:
        raise UsageError(f"execution provider {', '.join(repeated)} is given twice; give it once")
    available = ort.get_available_providers()
    for asked, name in zip((n for n in names if n.strip()), full, strict=True):
        if name not in available:
            hint = f" ({_gpu_install_hint()})" if name in GPU_PROVIDERS else ""
            raise UsageError(f"execution provider {asked.strip()!r} is not available in this "
                             f"onnxruntime; available: {', '.join(available)}{hint}")
    per_provider = parse_provider_options(options, full)
    if any(name in GPU_PROVIDERS for name in full):
        preload_gpu_libraries()
    return [(name, per_provider[name]) for name in full]


def provider_record(resolved: Resolved, used: Sequence[str]) -> list[dict[str, object]]:
    """What a result records about its providers: each one the session uses (in its order of
    preference) with the options that were asked for it."""
    asked = dict(resolved)
    return [{"name": name, "options": dict(asked.get(name, {}))} for name in used]
