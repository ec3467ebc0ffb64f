"""results.json, the long-format results.csv, and the printed table (fields in docs/results-schema.md)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bgbench import __version__
from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError, ParameterError
from bgbench.extended import BACKGROUND_SETS, PHOTOMETRIC_SETS
from bgbench.fileio import refuse_overwrite, write_json, write_text
from bgbench.harness.evaluate import ModelResult
from bgbench.harness.testsets import CLEAN, NOISE
from bgbench.tables import pct, text_table

CSV_COLUMNS = ("model", "dataset", "method", "suite", "test_set", "parameter", "n_images",
               "n_correct", "accuracy", "seconds", "provider", "input_size", "size_rule")
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


def model_to_json(result: ModelResult) -> dict[str, Any]:
    """One entry of ``models`` in results.json."""
    return {
        "model": result.model,
        "sha256": result.sha256,
        "dataset": result.dataset,
        "method": result.method,
        "provider": result.provider,
        "providers": result.providers,
        "provider_options": result.provider_options,
        "threads": result.threads,
        "batch_size": result.batch_size,
        "input_size": result.input_size,
        "size_rule": result.size_rule,
        "input": {**result.convention.to_json(), "fixed_batch": result.fixed_batch},
        "output": result.output,
        "n_images": result.test_sets[0].n_images,
        "suite": result.suite,
        "accuracy": result.accuracy,
        "background_average": result.background_average,
        "background_worst": result.background_worst,
        "fooled_by_any": result.fooled_by_any,
        "noise_sweep": result.noise_sweep,
        "extended_accuracy": result.extended_accuracy,
        "extended_background_average": result.extended_background_average,
        "extended_photometric_average": result.extended_photometric_average,
        "images_per_second": result.images_per_second,
        "metadata": result.metadata,
    }


def results_document(results: list[ModelResult], extra: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The whole results.json object, with provenance."""
    from bgbench.provenance import git_commit, package_versions

    doc = {
        "bgbench_version": __version__,
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(("numpy", "onnx", "onnxruntime", "onnxruntime-gpu",
                                      "scikit-image")),
    }
    doc.update(extra or {})
    doc["models"] = [model_to_json(r) for r in results]
    return doc


def csv_text(results: list[ModelResult]) -> str:
    """The long-format CSV: one row per model and test set, with the suite the set belongs to."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results:
        for t in r.test_sets:
            writer.writerow([r.model, r.dataset, r.method, t.test_set.suite, t.test_set.name,
                             "" if t.test_set.parameter is None else t.test_set.parameter,
                             t.n_images, t.n_correct, repr(t.accuracy), f"{t.seconds:.6f}",
                             r.provider, r.input_size, r.size_rule])
    return buffer.getvalue()


def write_results(out_dir: str | os.PathLike, results: list[ModelResult], force: bool = False,
                  extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write results.json and results.csv into ``out_dir`` atomically; refuse to overwrite."""
    out_dir = Path(out_dir)
    paths = out_dir / RESULTS_JSON, out_dir / RESULTS_CSV
    refuse_overwrite(paths, force, parameter="out_dir")
    write_json(paths[0], results_document(results, extra))
    write_text(paths[1], csv_text(results))
    return paths


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    """Load results.json (or the results.json inside a directory), with a clear error."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".json":
        path = path / RESULTS_JSON
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BgbenchError(f"{path} does not exist; run `bgbench eval ... --out "
                           f"{path.parent}` first") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BgbenchError(f"{path} is not valid JSON ({err}); re-run `bgbench eval`") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("models"), list):
        raise BgbenchError(f"{path} has no 'models' list; is it a bgbench results.json?")
    return doc


# What several results.json documents must share to be merged: one bgbench, one commit, one
# set of package versions and one test-set limit, so every merged number was measured the
# same way.
MERGE_KEYS = ("bgbench_version", "git_commit", "versions", "limit")


def merge_results(sources: list[str | os.PathLike], out_dir: str | os.PathLike,
                  force: bool = False) -> tuple[Path, Path]:
    """Write one results.json and results.csv into ``out_dir`` from several results
    directories (e.g. one ``bgbench eval`` per model, run in parallel), models in the order
    given. The documents must agree on ``MERGE_KEYS`` and name no model twice."""
    if not sources:
        raise ParameterError("`sources` is empty; name the results directories to merge")
    docs = [read_results(s) for s in sources]
    for key in MERGE_KEYS:
        values = {json.dumps(d.get(key), sort_keys=True) for d in docs}
        if len(values) > 1:
            raise BgbenchError(f"the results differ in {key!r} ({', '.join(sorted(values))}): "
                               "re-evaluate them with one bgbench checkout before merging")
    models = [m for d in docs for m in d["models"]]
    seen: set[str] = set()
    for m in models:
        if m["model"] in seen:
            raise BgbenchError(f"model {m['model']} is in more than one of the results; "
                               "merge each evaluation once")
        seen.add(m["model"])
    rows: list[str] = []
    for source, doc in zip(sources, docs, strict=True):
        path = Path(source) / RESULTS_CSV
        if not path.exists():
            raise BgbenchError(f"{path} does not exist; re-run `bgbench eval ... --out "
                               f"{source}`")
        header, *lines = path.read_text(encoding="utf-8").splitlines()
        if header != ",".join(CSV_COLUMNS):
            raise BgbenchError(f"{path} has other columns than this bgbench's results.csv")
        _check_rows(path, lines, doc)
        rows += lines
    out_dir = Path(out_dir)
    paths = out_dir / RESULTS_JSON, out_dir / RESULTS_CSV
    refuse_overwrite(paths, force, parameter="out_dir")
    merged = {**{k: v for k, v in docs[0].items() if k != "models"},
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "models": models}
    write_json(paths[0], merged)
    write_text(paths[1], "\n".join([",".join(CSV_COLUMNS), *rows]) + "\n")
    return paths


def _check_rows(path: Path, lines: list[str], doc: dict[str, Any]) -> None:
    """``lines`` of results.csv hold one whole row per test set of each model in ``doc``
    (a truncated or foreign results.csv is an error, never merged)."""
    want = {m["model"]: len(m["accuracy"]) + len(m.get("noise_sweep") or {})
            + len(m.get("extended_accuracy") or {}) for m in doc["models"]}
    have: dict[str, int] = {}
    for row in csv.reader(lines):
        if len(row) != len(CSV_COLUMNS):
            have = {}
            break
        have[row[0]] = have.get(row[0], 0) + 1
    if have != want:
        raise BgbenchError(f"{path} does not match the results.json beside it (cut short or "
                           "from another evaluation); re-run `bgbench eval ... --out "
                           f"{path.parent} --force`")


def _model_label(entry: dict[str, Any]) -> str:
    return Path(entry["model"]).stem


def format_table(models: list[dict[str, Any]]) -> str:
    """Accuracy (%) laid out like the paper's Table 1: rows = models, columns = backgrounds;
    then the noise sweep and the extended suite, each as its own table where evaluated.

    Takes results.json ``models`` entries, so a printed table and a file agree by construction.
    """
    names = [n for n in bgs.BACKGROUNDS if any(n in m["accuracy"] for m in models)]
    header = (["model", "dataset", "method", "size", CLEAN] + names
              + ["average", "worst", "fooled", "img/s"])
    rows = []
    for m in models:
        acc = m["accuracy"]
        rows.append([_model_label(m), m["dataset"], m["method"], str(m["input_size"]),
                     pct(acc.get(CLEAN))]
                    + [pct(acc.get(n)) for n in names]
                    + [pct(m["background_average"]), pct(m["background_worst"]),
                       pct(m["fooled_by_any"]), f"{m['images_per_second']:.0f}"])
    text = text_table(header, rows)
    sweeps = [m for m in models if m["noise_sweep"]]
    if sweeps:
        rates = list(sweeps[0]["noise_sweep"])
        sweep_rows = [[rate] + [pct(m["noise_sweep"].get(rate)) for m in sweeps]
                      for rate in rates]
        text += "\n\nNoise sweep (random background), accuracy %\n"
        text += text_table([f"{NOISE} rate"] + [_model_label(m) for m in sweeps], sweep_rows)
    extended_models = [m for m in models if m.get("extended_accuracy")]
    if extended_models:
        text += ("\n\nExtended suite (bgbench's own, not the paper's; docs/extended-suite.md), "
                 "accuracy %\n")
        text += _extended_table(extended_models)
    return text


def _extended_table(models: list[dict[str, Any]]) -> str:
    header = (["model", "dataset", "method", "size", *BACKGROUND_SETS, "bg-average",
               *PHOTOMETRIC_SETS, "photometric-average"])
    rows = []
    for m in models:
        acc = m["extended_accuracy"]
        rows.append([_model_label(m), m["dataset"], m["method"], str(m["input_size"])]
                    + [pct(acc.get(n)) for n in BACKGROUND_SETS]
                    + [pct(m["extended_background_average"])]
                    + [pct(acc.get(n)) for n in PHOTOMETRIC_SETS]
                    + [pct(m["extended_photometric_average"])])
    return text_table(header, rows)
