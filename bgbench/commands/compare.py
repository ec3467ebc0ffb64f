"""``bgbench compare A B``: two models paired image by image on the same test sets.

Per set: both accuracies, the images only A gets right and only B gets right, the exact
McNemar p-value (raw and Holm-adjusted over the sets compared) and A's accuracy minus B's
with a 95% interval. A model is taken from ``--results`` where its per-image correctness
is stored there, else evaluated now (torch-free, like ``bgbench eval``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bgbench.paths import add_data_root_argument
from bgbench.vocab import DATASETS, DEFAULT_SUITE, SUITES


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` subcommand."""
    p = subparsers.add_parser(
        "compare", help="pair two models image by image: discordant counts, exact McNemar "
        "p-values, differences with 95%% intervals",
        description="Pair two evaluated models on the test sets both were scored on: per set "
        "both accuracies, the images right only by A and only by B, the exact McNemar "
        "p-value (two-sided binomial test on those), its Holm adjustment over the sets "
        "compared, and the difference of accuracies with a 95% interval. A model named in "
        "--results (by path, file name, or an .onnx file's SHA-256) with per-image results "
        "(correct.npz) is taken from there; any other .onnx file is evaluated now. Models "
        "scored on different images, input sizes, limits or test-set definitions are refused.")
    p.add_argument("a", metavar="A", help="model A: an .onnx file, or a model in --results")
    p.add_argument("b", metavar="B", help="model B, likewise")
    p.add_argument("--results", nargs="*", default=[], metavar="DIR",
                   help="results directories (from `bgbench eval --out`) to take models from")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="test set for models evaluated now that have no bgbench.dataset metadata")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="models evaluated now use only the first N test images (default: the "
                   "stored model's limit, else all)")
    p.add_argument("--suite", choices=SUITES, default=DEFAULT_SUITE,
                   help="test suite for models evaluated now when neither is stored")
    p.add_argument("--noise-sweep", action="store_true",
                   help="also the 20 noise rates, for models evaluated now when neither is stored")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="onnxruntime threads for models evaluated now (default: cores available)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_data_root_argument(p)
    p.set_defaults(func=run)


@dataclass
class Side:
    """One model of the comparison: its per-image correctness and where it came from."""

    arg: str
    bits: Any = None
    source: str = ""
    path: Path | None = None


def _stored(results: list[str]) -> list[tuple[str, dict[str, Any], Any]]:
    from bgbench.harness.bits import read_bits
    from bgbench.harness.results import read_results

    out = []
    for directory in results:
        bits = read_bits(directory)
        out += [(directory, e, bits.get(e["model"])) for e in read_results(directory)["models"]]
    return out


def _find(arg: str, stored: list[tuple[str, dict[str, Any], Any]]) -> Side:
    """``arg`` as a stored model with per-image results, or as a file to evaluate."""
    from bgbench.errors import BgbenchError
    from bgbench.harness.model import file_sha256

    path = Path(arg)
    if path.is_file():
        sha = file_sha256(path)
        matches = [s for s in stored if s[1].get("sha256") == sha]
    else:
        matches = [s for s in stored if arg in (s[1]["model"], Path(s[1]["model"]).name,
                                                Path(s[1]["model"]).stem)]
    with_bits = [s for s in matches if s[2] is not None]
    if len({s[1].get("sha256") for s in with_bits}) > 1:
        names = ", ".join(f"{s[1]['model']} in {s[0]}" for s in with_bits)
        raise BgbenchError(f"{arg} names several different models ({names}); give a path")
    if with_bits:
        directory, entry, bits = with_bits[0]
        return Side(arg, bits, f"stored in {directory}")
    if path.is_file():
        return Side(arg, path=path)
    if matches:
        raise BgbenchError(f"{arg} is in {matches[0][0]} without per-image results (it was "
                           "evaluated before bgbench kept them in correct.npz); pass its .onnx "
                           "file to evaluate it now, or re-evaluate it with `bgbench eval`")
    where = ", ".join(s for s in dict.fromkeys(s[0] for s in stored)) or "no --results"
    raise BgbenchError(f"{arg} is not a file and names no model in {where}; give an .onnx "
                       "file or a model of --results")


def _evaluate(sides: list[Side], other: Side | None, args: argparse.Namespace) -> None:
    """Evaluate the sides without bits, on the sets and limit of ``other`` where it is
    stored, else on those the options choose."""
    from bgbench import backgrounds as bgs
    from bgbench import extended
    from bgbench.harness import evaluate
    from bgbench.harness.results import bits_of
    from bgbench.harness.testsets import EXTENDED_SUITE, NOISE

    limit, dataset = args.limit, args.dataset
    backgrounds, noise_sweep, suite = None, args.noise_sweep, args.suite
    if other is not None:
        labels = list(other.bits.sets)
        limit = other.bits.limit if limit is None else limit
        dataset = dataset or other.bits.dataset
        backgrounds = [n for n in bgs.BACKGROUNDS if n in labels] or None
        noise_sweep = any(label.startswith(f"{NOISE}=") for label in labels)
        suite = EXTENDED_SUITE if any(n in labels for n in extended.NAMES) else DEFAULT_SUITE
    results = evaluate([s.path for s in sides], dataset=dataset, backgrounds=backgrounds,
                       noise_sweep=noise_sweep, suite=suite, threads=args.threads,
                       data_root=args.data_root, limit=limit)
    for side, result in zip(sides, results, strict=True):
        side.bits = bits_of(result, limit)
        side.source = "evaluated now"


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The comparison of ``args.a`` against ``args.b`` as ``--json`` prints it."""
    from bgbench.harness.pairing import common_sets, pair

    stored = _stored(args.results)
    a, b = _find(args.a, stored), _find(args.b, stored)
    todo = [s for s in (a, b) if s.bits is None]
    if todo:
        done = [s for s in (a, b) if s.bits is not None]
        _evaluate(todo, done[0] if done else None, args)
    sets = common_sets(a.bits, b.bits)
    paired = pair(a.bits, b.bits, sets)
    return {"a": {"arg": a.arg, "model": a.bits.model, "sha256": a.bits.sha256,
                  "source": a.source},
            "b": {"arg": b.arg, "model": b.bits.model, "sha256": b.bits.sha256,
                  "source": b.source},
            "dataset": a.bits.dataset, "n_images": a.bits.n_images,
            "input_size": a.bits.input_size, "limit": a.bits.limit,
            "sets": [p.to_json() for p in paired],
            "only_in_a": [s for s in a.bits.sets if s not in sets],
            "only_in_b": [s for s in b.bits.sets if s not in sets]}


def format_comparison(doc: dict[str, Any]) -> str:
    """The comparison as a plain-text table, with what was paired above it."""
    from bgbench.tables import text_table

    def points(x: float) -> str:
        return f"{100 * x:+.1f}"

    rows = [[s["label"], f"{100 * s['accuracy_a']:.1f}", f"{100 * s['accuracy_b']:.1f}",
             str(s["only_a"]), str(s["only_b"]), f"{s['p_value']:.3g}",
             f"{s['holm_p']:.3g}" + (" *" if s["significant"] else ""),
             f"{points(s['difference'])} [{points(s['ci_low'])}, {points(s['ci_high'])}]"]
            for s in doc["sets"]]
    limited = f", first {doc['limit']} test images" if doc["limit"] else ""
    lines = [f"A: {doc['a']['model']} ({doc['a']['source']})",
             f"B: {doc['b']['model']} ({doc['b']['source']})",
             f"{doc['dataset']}, {doc['n_images']} images per set{limited}, "
             f"{doc['input_size']}x{doc['input_size']} input", "",
             text_table(["set", "A %", "B %", "only A", "only B", "McNemar p", "Holm p",
                         "A - B, points [95% CI]"], rows), "",
             "only A / only B: images right by that model alone; McNemar p: exact two-sided\n"
             "binomial test on those; Holm p: adjusted over the sets above (* at 0.05)."]
    for side in ("a", "b"):
        if doc[f"only_in_{side}"]:
            lines.append(f"Not paired, only {side.upper()} has: "
                         + ", ".join(doc[f"only_in_{side}"]))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Pair the two models and print the comparison."""
    from bgbench.errors import ParameterError

    try:
        doc = compare(args)
    except ParameterError as err:
        raise err.for_command_line() from None
    print(json.dumps(doc, indent=2) if args.json else format_comparison(doc))
    return 0
