"""results.json, the long-format results.csv, correct.npz beside them, and the printed table
(fields in docs/results-schema.md).

Documents written before bgbench kept intervals, per-image correctness and the measures of
``bgbench.harness.measures`` are read as they are: their intervals follow from their counts
(``entry_intervals``), the measures that need the outputs are absent from them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bgbench import __version__
from bgbench import backgrounds as bgs
from bgbench.errors import BgbenchError, ParameterError
from bgbench.extended import BACKGROUND_SETS, PHOTOMETRIC_SETS
from bgbench.fileio import refuse_overwrite, write_text
from bgbench.harness.bits import CORRECT_FILE, ModelBits, read_bits, write_bits
from bgbench.harness.evaluate import ModelResult, TestSetResult
from bgbench.harness.stats import wilson
from bgbench.harness.testsets import CLEAN, NOISE
from bgbench.tables import pct, text_table
from bgbench.vocab import EXTENDED_SUITE

# The columns of results.csv before intervals and measures; merge reads such files too.
OLD_CSV_COLUMNS = ("model", "dataset", "method", "suite", "test_set", "parameter", "n_images",
                   "n_correct", "accuracy", "seconds", "provider", "input_size", "size_rule")
MEASURE_COLUMNS = ("flip_rate", "ece", "brier", "confident_wrong")
CSV_COLUMNS = (*OLD_CSV_COLUMNS[:9], "ci_low", "ci_high", *OLD_CSV_COLUMNS[9:],
               *MEASURE_COLUMNS)
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
# results.json's accuracy maps, each with a parallel map of intervals under ``intervals``.
ACCURACY_MAPS = ("accuracy", "noise_sweep", "extended_accuracy")


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
        "intervals": _intervals(result),
        "output_kind": result.output_kind,
        "measures": {t.test_set.label: measures_to_json(t) for t in result.test_sets
                     if t.measures is not None},
        "images_per_second": result.images_per_second,
        "metadata": result.metadata,
        **({} if result.worst_case is None else {"worst_case": result.worst_case.to_json()}),
    }


# A JSON array holding no array or object: its items are put on one line.
_FLAT_ARRAY = re.compile(r"\[[^\[\]{}]*\]")


def json_text(doc: dict[str, Any]) -> str:
    """``doc`` as indented JSON, with each array of plain values (a confusion matrix's row,
    per-class accuracies) on one line, so the measures do not take a line per number."""
    def one_line(match: re.Match[str]) -> str:
        # Only the newlines and indentation between items go: JSON strings hold no newline.
        return re.sub(r"\n\s*\]", "]", re.sub(r"\[\n\s*", "[", re.sub(r",\n\s*", ", ",
                                                                     match.group())))

    return _FLAT_ARRAY.sub(one_line, json.dumps(doc, indent=2)) + "\n"


def _ci(low_high: tuple[float, float]) -> dict[str, float]:
    return {"ci_low": low_high[0], "ci_high": low_high[1]}


def _map_key(t: TestSetResult) -> tuple[str, str]:
    """Which accuracy map of results.json holds ``t``, and under which key."""
    if t.test_set.name == NOISE:
        return "noise_sweep", str(t.test_set.parameter)
    return ("extended_accuracy" if t.test_set.suite == EXTENDED_SUITE else "accuracy"), t.test_set.name


def _intervals(result: ModelResult) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {k: {} for k in ACCURACY_MAPS}
    for t in result.test_sets:
        which, key = _map_key(t)
        out[which][key] = _ci(t.interval)
    return out


def entry_intervals(entry: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """``intervals`` of a results.json entry: as stored, or for an entry written before they
    were, the Wilson intervals of its counts (each accuracy times ``n_images``)."""
    if "intervals" in entry:
        return entry["intervals"]
    n = entry["n_images"]
    return {which: {key: _ci(wilson(round(acc * n), n))
                    for key, acc in (entry.get(which) or {}).items()}
            for which in ACCURACY_MAPS}


def measures_to_json(t: TestSetResult) -> dict[str, Any]:
    """The ``measures`` record of one test set (docs/results-schema.md)."""
    m = t.measures
    cal = m.calibration
    return {"n_correct": t.n_correct, "flip_rate": m.flip_rate, "n_flipped": m.flipped,
            "ece": cal and cal.ece, "brier": cal and cal.brier,
            "confident_wrong": cal and cal.confident_wrong,
            "per_class_accuracy": m.per_class_accuracy, "confusion": m.confusion.tolist()}


def bits_of(result: ModelResult, limit: int | None = None) -> ModelBits:
    """The per-image correctness of ``result`` for ``correct.npz`` (``limit``: the test-image
    limit it was evaluated with)."""
    bits = ModelBits(result.model, result.sha256, result.dataset, result.input_size, limit,
                     result.test_sets[0].n_images)
    for t in result.test_sets:
        if t.correct is not None:
            bits.add(t.test_set.label, t.correct, t.definition or "")
    if result.worst_case is not None:
        for label, correct in result.worst_case.correct.items():
            bits.add(label, correct, result.worst_case.definition)
    return bits


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
            low, high = t.interval
            m = t.measures
            cal = m.calibration if m else None
            measures = [m and m.flip_rate, cal and cal.ece, cal and cal.brier,
                        cal and cal.confident_wrong]
            writer.writerow([r.model, r.dataset, r.method, t.test_set.suite, t.test_set.name,
                             "" if t.test_set.parameter is None else t.test_set.parameter,
                             t.n_images, t.n_correct, repr(t.accuracy), repr(low), repr(high),
                             f"{t.seconds:.6f}", r.provider, r.input_size, r.size_rule]
                            + ["" if v is None else repr(v) for v in measures])
        if r.worst_case is not None:
            for suite, name, parameter, n_images, n_correct in r.worst_case.csv_rows():
                low, high = wilson(n_correct, n_images)
                writer.writerow([r.model, r.dataset, r.method, suite, name, parameter, n_images,
                                 n_correct, repr(n_correct / n_images), repr(low), repr(high),
                                 f"{r.worst_case.seconds:.6f}", r.provider, r.input_size,
                                 r.size_rule] + [""] * len(MEASURE_COLUMNS))
    return buffer.getvalue()


def write_results(out_dir: str | os.PathLike, results: list[ModelResult], force: bool = False,
                  extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write results.json, results.csv and (where any set kept it) the per-image correctness
    ``correct.npz`` into ``out_dir`` atomically; refuse to overwrite. Returns the first two."""
    out_dir = Path(out_dir)
    paths = out_dir / RESULTS_JSON, out_dir / RESULTS_CSV
    bits_file = out_dir / CORRECT_FILE
    refuse_overwrite([*paths, bits_file], force, parameter="out_dir")
    limit = (extra or {}).get("limit")
    bits = [b for b in (bits_of(r, limit) for r in results) if b.sets]
    write_text(paths[0], json_text(results_document(results, extra)))
    write_text(paths[1], csv_text(results))
    _write_or_remove_bits(out_dir, bits)
    return paths


def _write_or_remove_bits(out_dir: Path, bits: list[ModelBits]) -> None:
    # A correct.npz left from an earlier evaluation must not pass for these results'.
    if bits:
        write_bits(out_dir, bits)
    else:
        (out_dir / CORRECT_FILE).unlink(missing_ok=True)


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


# What several results.json documents must share to be merged: one bgbench, one set of
# package versions and one test-set limit, so every merged number was measured the same way.
# They may come from several commits where every set they share was defined alike
# (``_check_definitions``).
MERGE_KEYS = ("bgbench_version", "versions", "limit")
# How every worst-case search's set definitions begin (``bgbench.attack.protocol``).
SEARCH_DEFINITION = "bgbench-worst-case-"


def relative_model_name(model: str, relative_to: str | os.PathLike) -> str:
    """``model`` (a path as ``bgbench eval`` was given it) relative to the directory
    ``relative_to``, which must hold it."""
    name = os.path.relpath(model, relative_to)
    if name == os.pardir or name.startswith(os.pardir + os.sep):
        raise ParameterError(f"`relative_to` ({relative_to}) does not hold model {model}; give "
                             "a directory that holds every model")
    return Path(name).as_posix()


def merge_results(sources: list[str | os.PathLike], out_dir: str | os.PathLike,
                  force: bool = False, relative_to: str | os.PathLike | None = None
                  ) -> tuple[Path, Path]:
    """Write one results.json, results.csv and correct.npz into ``out_dir`` from several
    results directories (e.g. one ``bgbench eval`` per model, run in parallel), models in the
    order given. The documents must agree on ``MERGE_KEYS`` and name no model twice, except
    that a model's evaluation and its worst-case search join into one entry. Older documents
    are carried with the intervals of their counts added and nothing else: no measures, and
    no per-image correctness where they have no correct.npz. With ``relative_to``, models are
    named by their paths relative to that directory (e.g. ``models/x.onnx`` for
    ``work/models/x.onnx`` relative to ``work``)."""
    if not sources:
        raise ParameterError("`sources` is empty; name the results directories to merge")
    docs = [read_results(s) for s in sources]
    for key in MERGE_KEYS:
        values = {json.dumps(d.get(key), sort_keys=True) for d in docs}
        if len(values) > 1:
            raise BgbenchError(f"the results differ in {key!r} ({', '.join(sorted(values))}): "
                               "re-evaluate them with one bgbench checkout before merging")
    commits = _model_commits(sources, docs)
    if relative_to is not None:
        for d in docs:
            d["models"] = [{**m, "model": relative_model_name(m["model"], relative_to)}
                           for m in d["models"]]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for m in (m for d in docs for m in d["models"]):
        grouped.setdefault(m["model"], []).append(m)
    models = [_join(entries) for entries in grouped.values()]
    rows, seen_rows = [], set()
    for source, doc in zip(sources, docs, strict=True):
        source_rows = _csv_rows(Path(source))
        for row in source_rows if relative_to is not None else ():
            row["model"] = relative_model_name(row["model"], relative_to)
        _check_rows(Path(source) / RESULTS_CSV, source_rows, doc)
        for row in source_rows:
            # A joined model's clean row is in both its evaluation and its search.
            key = tuple(row[c] for c in CSV_COLUMNS[:6])
            if key not in seen_rows:
                seen_rows.add(key)
                rows.append(row)
    bits: dict[str, ModelBits] = {}
    for b in (b for source in sources for b in read_bits(source).values()):
        if relative_to is not None:
            b.model = relative_model_name(b.model, relative_to)
        if b.model in bits:
            for label, correct in b.sets.items():
                bits[b.model].sets.setdefault(label, correct)
                bits[b.model].definitions.setdefault(label, b.definitions[label])
        else:
            bits[b.model] = b
    out_dir = Path(out_dir)
    paths = out_dir / RESULTS_JSON, out_dir / RESULTS_CSV
    refuse_overwrite([*paths, out_dir / CORRECT_FILE], force, parameter="out_dir")
    merged = {**{k: v for k, v in docs[0].items() if k != "models"},
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "models": [{**m, "intervals": entry_intervals(m)} for m in models]}
    if commits:
        merged["git_commit"] = ", ".join(sorted({c for v in commits.values()
                                                 for c in v.split(", ")}))
        for m in merged["models"]:
            m["git_commit"] = commits[m["sha256"], m["dataset"]]
    write_text(paths[0], json_text(merged))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(paths[1], buffer.getvalue())
    _write_or_remove_bits(out_dir, list(bits.values()))
    return paths


def _entry_commit(entry: dict[str, Any], doc: dict[str, Any]) -> str:
    """The commit(s) that evaluated ``entry``: its own after a merge of several, else its
    document's."""
    return str(entry.get("git_commit") or doc.get("git_commit"))


def _model_commits(sources: list[str | os.PathLike], docs: list[dict[str, Any]]
                   ) -> dict[tuple[str, str], str]:
    """{} where every document comes from one commit. Otherwise each model's commits by
    (sha256, dataset) (comma-separated where its evaluation and search differ), once
    ``_check_definitions`` has found that the results may be merged."""
    found: dict[tuple[str, str], set[str]] = {}
    for d in docs:
        for m in d["models"]:
            found.setdefault((m["sha256"], m["dataset"]), set()).update(
                _entry_commit(m, d).split(", "))
    commits = sorted(set().union(*found.values()))
    if len(commits) <= 1:
        return {}
    _check_definitions(sources, docs, ", ".join(commits))
    return {key: ", ".join(sorted(c)) for key, c in found.items()}


def _check_definitions(sources: list[str | os.PathLike], docs: list[dict[str, Any]],
                       commits: str) -> None:
    """Refuse results of several ``commits`` unless every model has its per-image
    correctness (``correct.npz``, which names what each set was) and every set that models
    of one dataset, input size and test-image count share was defined alike (the same
    composites and labels, or the same search protocol, budget, seed and images), so that no
    number was measured differently from the others."""
    defined: dict[tuple[Any, ...], tuple[str, str]] = {}
    for source, doc in zip(sources, docs, strict=True):
        bits = read_bits(source)
        for m in doc["models"]:
            commit = _entry_commit(m, doc)
            if m["model"] not in bits:
                raise BgbenchError(
                    f"the results come from several commits ({commits}) and {m['model']} in "
                    f"{source} has no per-image correctness ({CORRECT_FILE}) to show how its "
                    "sets were defined: re-evaluate it with this bgbench before merging")
            b = bits[m["model"]]
            for label, definition in b.definitions.items():
                # A search defines its sets (its clean set too) by its protocol, budget and
                # seed; an evaluation by its composites.
                searched = definition.startswith(SEARCH_DEFINITION)
                key = (b.dataset, b.input_size, b.n_images, label, searched)
                first = defined.setdefault(key, (definition, commit))
                if first[0] != definition:
                    raise BgbenchError(
                        f"the set {label!r} of {b.dataset} ({b.n_images} images at "
                        f"{b.input_size}x{b.input_size}) was defined differently at commit "
                        f"{first[1]} and at commit {commit} ({m['model']} in {source}): "
                        "re-evaluate the results with one bgbench checkout before merging")


# What must agree between a model's evaluation and its worst-case search to join them.
_JOIN_KEYS = ("sha256", "dataset", "input_size", "size_rule", "input", "output", "n_images")


def _join(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """One model's entry from its entries in several results: an evaluation and a
    worst-case search (``bgbench attack``) of the same file on the same images join."""
    if len(entries) == 1:
        return entries[0]
    searches = [e for e in entries if "worst_case" in e]
    evaluations = [e for e in entries if "worst_case" not in e]
    name = entries[0]["model"]
    if len(entries) != 2 or len(searches) != 1:
        raise BgbenchError(f"model {name} is in more than one of the results; merge each "
                           "evaluation once (an evaluation and one `bgbench attack` of a "
                           "model may be merged together)")
    (search,), (evaluation,) = searches, evaluations
    for key in _JOIN_KEYS:
        if search.get(key) != evaluation.get(key):
            raise BgbenchError(f"model {name}: its evaluation and its worst-case search "
                               f"differ in {key!r}; run both on the same file and images")
    if search["accuracy"].get(CLEAN) != evaluation["accuracy"].get(CLEAN):
        raise BgbenchError(f"model {name}: clean accuracy differs between its evaluation and "
                           "its worst-case search; they did not see the same model or inputs")
    return {**evaluation, "worst_case": search["worst_case"]}


def _csv_rows(source: Path) -> list[dict[str, str]]:
    """The rows of ``source``'s results.csv in this bgbench's columns: a file written before
    intervals and measures gets the intervals of its counts and empty measures."""
    path = source / RESULTS_CSV
    if not path.exists():
        raise BgbenchError(f"{path} does not exist; re-run `bgbench eval ... --out {source}`")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        header = tuple(reader.fieldnames or ())
        rows = list(reader)
    if header == CSV_COLUMNS:
        return rows
    if header != OLD_CSV_COLUMNS:
        raise BgbenchError(f"{path} has other columns than a bgbench results.csv; re-run "
                           f"`bgbench eval ... --out {source}`")
    for row in rows:
        low, high = wilson(int(row["n_correct"]), int(row["n_images"]))
        row.update(ci_low=repr(low), ci_high=repr(high), **dict.fromkeys(MEASURE_COLUMNS, ""))
    return rows


def _check_rows(path: Path, rows: list[dict[str, str]], doc: dict[str, Any]) -> None:
    """``rows`` of results.csv hold one whole row per test set (and search row) of each model
    in ``doc`` (a truncated or foreign results.csv is an error, never merged)."""
    def expected(m: dict[str, Any]) -> int:
        wc = m.get("worst_case")
        searched = 2 + len(wc["worst_of_k"]) + len(wc["per_family"]) if wc else 0
        return (len(m["accuracy"]) + len(m.get("noise_sweep") or {})
                + len(m.get("extended_accuracy") or {}) + searched)

    want = {m["model"]: expected(m) for m in doc["models"]}
    have: dict[str, int] = {}
    for row in rows:
        if None in row or None in row.values():
            have = {}
            break
        have[row["model"]] = have.get(row["model"], 0) + 1
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
