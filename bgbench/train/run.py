"""One training run: the run directory (new, resumed or forced), its config, the data, the
process group, and loading a finished run's networks back."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bgbench.errors import BgbenchError, ParameterError
from bgbench.fileio import write_json, write_text
from bgbench.locks import LOCK_FILE, directory_lock, has_content, is_leftover
from bgbench.provenance import git_commit, package_versions
from bgbench.train import config as cfg
from bgbench.train import distributed
from bgbench.train.checkpoint import StageCheckpoint, load_state
from bgbench.train.data import split
from bgbench.train.precision import check_precision
from bgbench.train.run_config import RunConfig
from bgbench.train.stages import METHOD_STAGES, build_models
from bgbench.train.trainer import CHECKPOINTS, DONE, METRICS, WEIGHT_FILES, Trainer
from bgbench.vocab import DATASETS, DEFAULT_PRESET, METHODS, read_preset

CONFIG = "config.json"
# The keys that define what a run computes; a resume must match them exactly.
IDENTITY = ("dataset", "method", "preset", "seed", "options")


def make_config(dataset: str, method: str, preset: str = DEFAULT_PRESET, seed: int = 0,
                overrides: dict[str, Any] | None = None) -> RunConfig:
    """The full, checked configuration of a run (every option resolved from the preset)."""
    if dataset not in DATASETS and dataset != "synthetic":
        raise ParameterError(f"unknown `dataset` {dataset!r}; choose from {', '.join(DATASETS)}")
    if method not in METHODS:
        raise ParameterError(f"unknown `method` {method!r}; choose from {', '.join(METHODS)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ParameterError(f"`seed` must be a non-negative integer, got {seed!r}")
    return RunConfig(dataset, method, preset, seed, cfg.resolve(preset, overrides))


def _prepare_dir(out: Path, config: RunConfig, resume: bool, force: bool,
                 ctx: distributed.Context) -> bool:
    """Make ``out`` ready; return False when a resumed run is already complete. Called with
    ``out``'s lock held, so what a killed writer left (temporary files, a torn metrics line)
    is nobody's work in progress."""
    exists = has_content(out)
    if ctx.is_main:
        _remove_temporary_files(out)
    if exists and not (resume or force):
        raise ParameterError(f"run directory {out} already exists; pass `resume` to continue "
                             "it or `force` to start over")
    if exists and resume:
        saved, record = read_config(out), config.as_dict()
        diff = [k for k in IDENTITY if saved.get(k) != record.get(k)]
        if diff:
            detail = ", ".join(_describe(k, saved.get(k), record.get(k)) for k in diff)
            raise ParameterError(f"cannot resume {out}: it was started with different "
                                 f"settings ({detail}); repeat its options or pass `force`")
        if (out / DONE).exists():
            read_done(out)
            return False
        if ctx.is_main:
            _trim_metrics(out)
        ctx.barrier()
        return True
    if exists and force and ctx.is_main:
        # Everything but the lock file, which this process holds: a new file of that name
        # would let a second writer lock it while this one still runs.
        for entry in out.iterdir():
            if entry.name == LOCK_FILE:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    ctx.barrier()
    return True


def _remove_temporary_files(out: Path) -> None:
    """Delete the temporary files of atomic writes a killed process left (``.NAME.*.tmp``)."""
    for folder in (out, out / CHECKPOINTS):
        for tmp in folder.glob(".*.tmp"):
            if is_leftover(tmp):
                tmp.unlink(missing_ok=True)


def _describe(key: str, old: Any, new: Any) -> str:
    if key == "options" and isinstance(old, dict) and isinstance(new, dict):
        names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{n}: {old.get(n)!r} -> {new.get(n)!r}" for n in names)
    return f"{key}: {old!r} -> {new!r}"


def _trim_metrics(out: Path) -> None:
    """Drop metric lines of epochs after each stage's last checkpoint (they will be redone),
    and a last line a kill cut short. A broken line before it is an error: it held an epoch
    that is checkpointed, and rewriting the file would lose it."""
    path = out / METRICS
    if not path.exists():
        return
    done: dict[str, int] = {}
    for ckpt in (out / CHECKPOINTS).glob("*.pt"):
        done[ckpt.stem] = StageCheckpoint.load(ckpt).epochs_done
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    kept = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            stage, epoch = record["stage"], record["epoch"]
        except (ValueError, KeyError, TypeError):
            if number == len(lines) and not text.endswith("\n"):
                continue  # an append the kill interrupted: its epoch is redone
            raise BgbenchError(f"{path} line {number} is not a metrics record; restore the "
                               "file, or delete the run directory and train again") from None
        if epoch <= done.get(stage, 0):
            kept.append(line)
    if len(kept) != len(lines):
        write_text(path, "".join(line + "\n" for line in kept))


def read_done(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's ``done.json``; broken is an error naming the file and the fix."""
    path = Path(run_dir) / DONE
    try:
        done = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(done, dict) or "val_accuracy" not in done:
            raise ValueError("no val_accuracy")
    except (OSError, ValueError) as err:
        raise BgbenchError(f"{path} is corrupt ({err}); delete it and resume the run "
                           "(`bgbench train ... --resume` rewrites it from the checkpoints)"
                           ) from None
    return done


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``config.json`` record (configuration, stages and provenance); missing or
    broken is an error naming the file. A preset recorded under an alias (``paper``) reads
    as the preset it names (``full``)."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise BgbenchError(f"{path} not found: {run_dir} is not a training run directory "
                           "(train one with `bgbench train --out DIR`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        if config["method"] not in METHODS:
            raise ValueError(f"unknown method {config['method']!r}")
        config["options"] = cfg.TrainOptions.from_dict(config["options"]).as_dict()
        RunConfig.from_dict(config)  # every entry of the configuration is there
    except (ValueError, KeyError, TypeError, ParameterError) as err:
        raise BgbenchError(f"{path} is corrupt or not a bgbench config ({err}); restore it, "
                           "or delete the run directory and train again") from None
    config["preset"] = read_preset(config.get("preset"))
    return config


def load_config(run_dir: str | Path) -> RunConfig:
    """A run's configuration from its ``config.json`` (errors as ``read_config``)."""
    return RunConfig.from_dict(read_config(run_dir))


def train(config: RunConfig, out: str | Path, *, device: str = "cpu",
          resume: bool = False, force: bool = False, quiet: bool = False,
          data_root: str | None = None,
          tensors: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict[str, Any] | None:
    """Train one run into ``out``; returns the contents of ``done.json``.

    ``tensors`` (images ``[N, 1, 32, 32]`` in [0, 1], labels) replaces loading the dataset
    (for tests and benchmarks). Under torchrun, joins the process group; only rank 0 writes.
    Returns None when ``resume`` finds the run already complete.
    """
    out = Path(out)
    if resume and force:
        raise ParameterError("`resume` and `force` contradict each other; pass one")
    ctx = distributed.setup(device)
    try:
        opts = config.options
        check_precision(opts.precision, ctx.device)
        if opts.family_share > 0:
            check_precision(opts.family_precision, ctx.device, "family_precision")
        if opts.batch_size % ctx.world:
            raise ParameterError(f"`batch_size` {opts.batch_size} does not "
                                 f"divide over {ctx.world} processes; use a multiple of "
                                 f"{ctx.world}")
        # Taken before anything in ``out`` is read or deleted, held to the last write.
        with directory_lock(out, "train"):
            if not _prepare_dir(out, config, resume, force, ctx):
                if ctx.is_main and not quiet:
                    print(f"{out} is already complete ({DONE} exists); nothing to do")
                return None
            if tensors is None:
                if config.dataset == "synthetic":
                    raise ParameterError("the synthetic dataset exists only for tests: pass "
                                         "`tensors`")
                from bgbench.data.torch_data import load_tensors

                tensors = load_tensors(config.dataset, "train", data_root)
            data = split(*tensors, opts.val_size, opts.train_subset, opts.split_seed)
            if ctx.is_main and not (out / CONFIG).exists():
                record = {**config.as_dict(),
                          "stages": [stage.name for stage in METHOD_STAGES[config.method]],
                          "device": device, "world_size": ctx.world,
                          "git_commit": git_commit(), "package_versions": package_versions(),
                          "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
                write_json(out / CONFIG, record)
            ctx.barrier()
            return Trainer(config, out, data, ctx, quiet=quiet).run()
    finally:
        distributed.teardown(ctx)


def _load_weights(model: nn.Module, path: Path) -> None:
    if not path.exists():
        raise BgbenchError(f"{path} not found: the run is not finished (resume its "
                           "training)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise BgbenchError(f"{path} is corrupt or unreadable ({type(err).__name__}); "
                           "retrain the run") from None
    if not isinstance(state, dict):
        raise BgbenchError(f"{path} is not a state_dict; retrain the run")
    load_state(model, state, path)


def load_classifier(run_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The run's final classifier (rebuilt from ``config.json``, weights from
    ``classifier.pt``) in eval mode, and its ``config.json`` record."""
    record = read_config(run_dir)
    model = _networks(RunConfig.from_dict(record))["classifier"]
    _load_weights(model, Path(run_dir) / WEIGHT_FILES["classifier"])
    return model.eval(), record


def load_generators(run_dir: str | Path) -> tuple[nn.Module | None, nn.Module | None]:
    """The run's mask generator and background generator in eval mode (None where its
    method has none)."""
    networks = _networks(load_config(run_dir))
    loaded: list[nn.Module | None] = []
    for name in ("mask_generator", "background_generator"):
        model = networks.get(name)
        if model is not None:
            _load_weights(model, Path(run_dir) / WEIGHT_FILES[name])
            model.eval()
        loaded.append(model)
    return loaded[0], loaded[1]


def _networks(config: RunConfig) -> dict[str, nn.Module]:
    return build_models(config.method, config.options)
