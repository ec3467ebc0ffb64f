"""``bgbench reproduce``: data, training, export, evaluation, the worst-case search and the
report for every configuration.

Each step runs through the same parser and function as its subcommand (``bgbench data
prepare``, ``train``, ``export``, ``eval``, ``attack``, ``merge``, ``report``), so there is
one place for each thing. Work already done is skipped: a finished run (``done.json``), an
exported model, and evaluations and searches that already cover exactly that model; an
unfinished run is resumed.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from bgbench.errors import BgbenchError, ParameterError
from bgbench.locks import directory_lock, has_content
from bgbench.train.config import check_preset
from bgbench.vocab import DATASETS, DEFAULT_PRESET, EXTENDED_SUITE, MAIN_METHODS, METHODS


@dataclass
class Plan:
    """What ``reproduce`` runs; ``out`` holds runs/, models/, evals/ (one evaluation per
    model), attacks/ (one worst-case search per model, unless ``attack_budget`` is 0),
    results/ (their merge) and report.md. ``attack_budget`` None: the preset's
    (``budget``)."""

    out: Path
    preset: str = DEFAULT_PRESET
    datasets: tuple[str, ...] = DATASETS
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0,)
    ablation_seeds: tuple[int, ...] | None = None  # None: ``seeds``
    device: str = "cpu"
    providers: str = "cpu"
    threads: int | None = None
    limit: int | None = None
    attack_budget: int | None = None
    data_root: str | None = None
    train_args: list[str] = field(default_factory=list)

    def name(self, dataset: str, method: str, seed: int) -> str:
        """``<dataset>-<method>-seed<N>``, the name of a run and of its model."""
        return f"{dataset}-{method}-seed{seed}"

    def seeds_for(self, method: str) -> tuple[int, ...]:
        """``seeds`` for traditional and proposal, ``ablation_seeds`` (if set) otherwise."""
        if method in MAIN_METHODS or self.ablation_seeds is None:
            return self.seeds
        return self.ablation_seeds

    def budget(self) -> int:
        """Background queries per image of each model's worst-case search (0: none)."""
        from bgbench.attack.protocol import DEFAULT_BUDGET, REPRODUCE_BUDGETS

        if self.attack_budget is not None:
            return self.attack_budget
        return REPRODUCE_BUDGETS.get(self.preset, DEFAULT_BUDGET)

    def configurations(self) -> list[tuple[str, str, int]]:
        """Every (dataset, method, seed), in the paper's order."""
        return [(d, m, s) for d in self.datasets for m in self.methods
                for s in self.seeds_for(m)]


def parse_list(text: str, allowed: tuple[str, ...], parameter: str) -> tuple[str, ...]:
    """A comma-separated subset of ``allowed`` (``all`` for every one), in the given order."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if items == ["all"]:
        return allowed
    unknown = [t for t in items if t not in allowed]
    if unknown or not items:
        raise ParameterError(f"`{parameter}`: unknown {', '.join(unknown) or 'empty list'}; "
                             f"choose from {', '.join(allowed)} or all")
    return tuple(dict.fromkeys(items))


def parse_seeds(text: str, parameter: str = "seeds") -> tuple[int, ...]:
    """``0,1,2`` -> (0, 1, 2); non-negative integers only."""
    try:
        seeds = tuple(dict.fromkeys(int(t) for t in text.split(",") if t.strip()))
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0:
        raise ParameterError(f"`{parameter}` must be comma-separated non-negative integers, "
                             f"got {text!r}")
    return seeds


def _step(argv: list[str]) -> None:
    """Run one subcommand in this process, exactly as ``bgbench ARGV`` would."""
    from bgbench.cli import build_parser

    args = build_parser().parse_args(argv)
    print(f"\n$ bgbench {shlex.join(argv)}", flush=True)
    args.func(args)


def _data_root(plan: Plan) -> list[str]:
    return ["--data-root", plan.data_root] if plan.data_root else []


def _results_cover(results: Path, models: list[Path], plan: Plan, search: bool = False
                   ) -> bool:
    """Whether results.json already holds exactly these model files, evaluated as asked
    (the noise sweep and the extended suite, the limit; with ``search``: their worst-case
    search at the plan's budget), with its results.csv written after it (an evaluation
    killed between the two writes is redone) and its per-image correctness beside it (an
    evaluation by an older bgbench is redone). A results.json that is not one is an error:
    it is never silently replaced."""
    from bgbench.harness.model import file_sha256

    table = results.with_name("results.csv")
    if not results.is_file():
        return False
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
        have = {(m["model"], m["sha256"]) for m in doc["models"]}
        if search:
            asked = all(m["worst_case"]["budget"] == plan.budget() for m in doc["models"])
        else:
            asked = all(m["noise_sweep"] and m.get("suite") == EXTENDED_SUITE
                        for m in doc["models"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BgbenchError(f"{results} is corrupt ({type(err).__name__}: {err}); delete it "
                           "and run reproduce again to evaluate that model anew") from None
    if not table.is_file() or table.stat().st_mtime_ns < results.stat().st_mtime_ns:
        return False
    from bgbench.harness.bits import CORRECT_FILE

    want = {(str(p), file_sha256(p)) for p in models}
    # A --limit at or above the test set's size is recorded as a full evaluation.
    recorded = doc.get("limit")
    limit_ok = recorded == plan.limit or (
        recorded is None and plan.limit is not None
        and all(m["n_images"] <= plan.limit for m in doc["models"]))
    return (have == want and asked and limit_ok
            and (results.parent / CORRECT_FILE).is_file())


def run_configuration(plan: Plan, dataset: str, method: str, seed: int) -> list[Path]:
    """Train, export, evaluate and search one of ``plan``'s configurations, skipping what is
    done; returns its evaluation's results directory and its search's. One evaluation and
    one search per model, so an interrupted reproduce keeps what it measured."""
    out, name = plan.out, plan.name(dataset, method, seed)
    run_dir, model = out / "runs" / name, out / "models" / f"{name}.onnx"
    if (run_dir / "done.json").is_file():
        print(f"\n{name}: trained (skipping)", flush=True)
    else:
        resume = ["--resume"] if has_content(run_dir) else []
        _step(["train", "--dataset", dataset, "--method", method, "--preset", plan.preset,
               "--seed", str(seed), "--device", plan.device, "--out", str(run_dir),
               "--quiet", *resume, *_data_root(plan), *plan.train_args])
    if model.is_file():
        print(f"{name}: exported (skipping)", flush=True)
    else:
        _step(["export", str(run_dir), "--out", str(model), *_data_root(plan)])
    threads = ["--threads", str(plan.threads)] if plan.threads else []
    limit = ["--limit", str(plan.limit)] if plan.limit else []
    inputs = ["--providers", plan.providers, *threads, *limit, "--force", "--quiet",
              *_data_root(plan)]
    evaluation = out / "evals" / name
    if _results_cover(evaluation / "results.json", [model], plan):
        print(f"{name}: evaluated (skipping)", flush=True)
    else:
        _step(["eval", str(model), "--noise-sweep", "--suite", EXTENDED_SUITE,
               "--out", str(evaluation), *inputs])
    if not plan.budget():
        return [evaluation]
    search = out / "attacks" / name
    if _results_cover(search / "results.json", [model], plan, search=True):
        print(f"{name}: searched (skipping)", flush=True)
    else:
        _step(["attack", str(model), "--budget", str(plan.budget()), "--out", str(search),
               *inputs])
    return [evaluation, search]


def reproduce(plan: Plan) -> Path:
    """Run every step of ``plan`` that is not done yet; returns the report's path. Holds
    ``plan.out``'s lock throughout, so a second reproduce there is refused."""
    with directory_lock(plan.out, "reproduce"):
        data = ["--dataset", plan.datasets[0] if len(plan.datasets) == 1 else "all"]
        _step(["data", "prepare", *data, *_data_root(plan)])
        evaluations = [d for configuration in plan.configurations()
                       for d in run_configuration(plan, *configuration)]
        results, report = plan.out / "results", plan.out / "report.md"
        _step(["merge", *map(str, evaluations), "--out", str(results), "--force"])
        worst_case = ["--worst-case", str(results)] if plan.budget() else []
        _step(["report", str(results), "--out", str(report), "--runs", str(plan.out / "runs"),
               *worst_case, "--force", *_data_root(plan)])
        return report


def plan_from_args(args) -> Plan:
    """The ``Plan`` for parsed ``bgbench reproduce`` arguments."""
    return Plan(out=Path(args.out), preset=check_preset(args.preset),
                datasets=parse_list(args.datasets, DATASETS, "datasets"),
                methods=parse_list(args.methods, METHODS, "methods"),
                seeds=parse_seeds(args.seeds),
                ablation_seeds=(parse_seeds(args.ablation_seeds, "ablation_seeds")
                                if args.ablation_seeds else None),
                device=args.device, providers=args.providers,
                threads=args.threads, limit=args.limit, attack_budget=args.attack_budget,
                data_root=args.data_root,
                train_args=shlex.split(args.train_args or ""))
