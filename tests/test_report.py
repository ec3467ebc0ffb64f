"""The report: tables beside the paper's numbers, figures, and clear refusals."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
from test_harness import make_model, synthetic_data

from bgbench.errors import BgbenchError, ParameterError
from bgbench.harness import TestSuite, evaluate, write_results
from bgbench.report import (
    group_entries,
    load_entries,
    readme_results,
    report_markdown,
    update_readme,
    write_report,
)
from bgbench.report.figures import find_run_dir, noise_figure
from bgbench.report.paper import PAPER_TABLE1
from bgbench.report.readme import README_BEGIN, README_END
from bgbench.report.tables import extended_table, model_table
from bgbench.tables import MISSING, markdown_table, pct, text_table


def tagged_model(path, dataset: str, method: str, seed: int, weights=None, size: int = 32,
                 **extra):
    make_model(path, dataset=dataset, weights=weights, size=size)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"bgbench.dataset": dataset, "bgbench.method": method,
                                        "bgbench.input_size": str(size), "bgbench.seed": str(seed),
                                        "bgbench.run": f"{dataset}-{method}-seed{seed}",
                                        **{f"bgbench.{k}": str(v) for k, v in extra.items()}})
    onnx.save(model, str(path))
    return path


@pytest.fixture
def results_dirs(tmp_path):
    images, labels = synthetic_data()
    suites = {d: TestSuite(d, images, labels, threads=1) for d in ("mnist", "fashion-mnist")}
    rng = np.random.default_rng(0)
    models = [tagged_model(tmp_path / f"p{s}.onnx", "fashion-mnist", "proposal", s,
                           rng.normal(size=(1024, 10)).astype(np.float32)) for s in (0, 1)]
    models.append(tagged_model(tmp_path / "t.onnx", "mnist", "traditional", 0))
    first = evaluate(models[:2], noise_sweep=True, threads=1, suites=suites)
    second = evaluate(models[2:], threads=1, suites=suites)
    write_results(tmp_path / "r1", first)
    write_results(tmp_path / "r2", second)
    return tmp_path / "r1", tmp_path / "r2", first, second


def test_report_tables_and_figures(tmp_path, results_dirs):
    r1, r2, first, second = results_dirs
    notes = []
    out = write_report([r1, r2], tmp_path / "rep" / "report.md", note=notes.append)
    text = out.read_text()
    assert text == report_markdown([r1, r2])
    # Table 1: the paper's Fashion-MNIST proposal row, and ours with mean ± sd over two seeds.
    paper = PAPER_TABLE1[("fashion-mnist", "proposal")]
    assert "| Proposal: paper | " + " | ".join(f"{p:.1f}" for p in paper) in text
    ours = [100 * r.accuracy["stripes"] for r in first]
    mean, sd = np.mean(ours), np.std(ours, ddof=1)
    row = next(ln for ln in text.splitlines() if ln.startswith("| Proposal: ours (2 models)"))
    assert row.split(" | ")[1] == f"{mean:.1f} ± {sd:.1f}"
    diff_row = next(ln for ln in text.splitlines() if ln.startswith("| Proposal: ours − paper"))
    assert diff_row.split(" | ")[1] == f"{mean - paper[0]:+.1f}"
    # MNIST traditional: one model, so a plain number.
    trad = next(ln for ln in text.splitlines() if ln.startswith("| Traditional: ours (1 model)"))
    assert trad.split(" | ")[-4] == f"{100 * second[0].clean:.1f}"
    gap = 100 * second[0].clean - 100 * second[0].background_average
    assert trad.split(" | ")[-3] == f"{gap:.1f}"
    # Table 3 has the proposal and the paper's 59.8; the ablations are not evaluated.
    avg = np.mean([100 * r.background_average for r in first])
    assert re.search(rf"\| Proposal \| {avg:.1f} ± [0-9.]+ \| 59.8 \| {avg - 59.8:+.1f} \|", text)
    assert "| True mask | – | 72.8 | – |" in text
    assert "| noise rate |" in text
    for fig in ("gallery.png", "noise_sweep.png"):
        path = out.parent / "figures" / fig
        assert path.stat().st_size < 300_000 and path.read_bytes()[:4] == b"\x89PNG"
    # Without run directories the generator figures are linked (the text depends on the
    # results alone) but not drawn, and each one left out is named.
    runs = ("fashion-mnist-proposal-seed0", "fashion-mnist-proposal-seed1")
    for run in runs:
        assert f"![{run}](figures/generators-no-preset-{run}.png)" in text
        assert not (out.parent / "figures" / f"generators-no-preset-{run}.png").exists()
    assert [n.split(" not drawn")[0] for n in notes] == [
        f"figures/generators-no-preset-{run}.png" for run in runs]
    assert all("its run directory is not in --runs" in n for n in notes)


def test_report_refuses_overwrite_and_bad_input(tmp_path, results_dirs):
    r1, *_ = results_dirs
    out = write_report([r1], tmp_path / "report.md")
    with pytest.raises(ParameterError, match="pass `force=True`"):
        write_report([r1], out)
    write_report([r1], out, force=True)
    with pytest.raises(BgbenchError, match="does not exist"):
        write_report([tmp_path / "nowhere"], tmp_path / "x.md")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{not json")
    with pytest.raises(BgbenchError, match="not valid JSON"):
        write_report([tmp_path / "bad"], tmp_path / "y.md")


def test_report_refuses_to_average_differently_evaluated_models(tmp_path):
    images, labels = synthetic_data()
    model = tagged_model(tmp_path / "p.onnx", "mnist", "proposal", 0)
    other = tagged_model(tmp_path / "q.onnx", "mnist", "proposal", 1)
    full = TestSuite("mnist", images, labels, threads=1)
    limited = TestSuite("mnist", images[:40], labels[:40], threads=1)
    write_results(tmp_path / "full", evaluate([model], threads=1, suites={"mnist": full}))
    write_results(tmp_path / "limited", evaluate([other], threads=1,
                                                 suites={"mnist": limited}))
    write_results(tmp_path / "swept", evaluate([other], noise_sweep=True, threads=1,
                                               suites={"mnist": full}))
    entries, _ = load_entries([tmp_path / "full", tmp_path / "limited"])
    with pytest.raises(BgbenchError, match="different test images.*p.onnx.*q.onnx"):
        group_entries(entries)
    entries, _ = load_entries([tmp_path / "full", tmp_path / "swept"])
    with pytest.raises(BgbenchError, match="different noise rates"):
        group_entries(entries)
    with pytest.raises(BgbenchError, match="different test images"):
        write_report([tmp_path / "full", tmp_path / "limited"], tmp_path / "r.md")
    assert not (tmp_path / "r.md").exists()


def preset_groups(tmp_path, presets: tuple[str, ...]) -> list:
    """The groups of one seed-0 MNIST proposal model per preset, evaluated and loaded."""
    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    models = [tagged_model(tmp_path / f"{preset}.onnx", "mnist", "proposal", 0, preset=preset)
              for preset in presets]
    write_results(tmp_path / "r", evaluate(models, threads=1, suites=suites))
    return group_entries(load_entries([tmp_path / "r"])[0])


def test_presets_are_separate_groups_faithful_first(tmp_path):
    groups = preset_groups(tmp_path, ("full", "faithful"))
    assert [g.preset for g in groups] == ["faithful", "full"]
    table = readme_results(groups)
    assert table.index("| proposal [faithful] |") < table.index("| proposal [full] |")


def test_readme_results_table_and_wall_times(tmp_path, results_dirs):
    r1, r2, first, second = results_dirs
    groups = group_entries(load_entries([r1, r2])[0])
    text = readme_results(groups)
    lines = text.splitlines()
    assert lines[0].startswith("| method | seeds | MNIST: six-bg average (paper) | clean |")
    proposal = next(ln for ln in lines if ln.startswith("| proposal |")).split(" | ")
    averages = [100 * r.background_average for r in first]
    assert proposal[1] == "0 / 2"  # seeds per dataset, as they differ
    assert proposal[2:6] == [MISSING] * 4  # no MNIST proposal was evaluated
    want = f"{np.mean(averages):.1f} ± {np.std(averages, ddof=1):.1f} (59.8)"
    assert proposal[6] == want
    traditional = next(ln for ln in lines if ln.startswith("| traditional |")).split(" | ")
    assert traditional[2] == f"{100 * second[0].background_average:.1f} (31.2)"
    assert "Training wall time: not recorded" in text

    entries = load_entries([r1])[0]
    for entry, seconds in zip(entries, (150.0, 185.0), strict=True):
        entry["metadata"] |= {"bgbench.train_seconds": str(seconds),
                              "bgbench.train_device": "cpu"}
    line = readme_results(group_entries(entries)).splitlines()[-1]
    assert line == ("- Training wall time per run (`train_seconds`, on cpu): proposal 2.5-3.1 "
                    "min (2 runs); all 2 runs 0.1 h.")


def test_noise_figure_has_a_panel_per_dataset_bands_and_an_outside_legend(tmp_path,
                                                                          monkeypatch):
    import bgbench.plotting

    images, labels = synthetic_data()
    suites = {d: TestSuite(d, images, labels, threads=1) for d in ("mnist", "fashion-mnist")}
    rng = np.random.default_rng(1)
    models = [tagged_model(tmp_path / f"{d}{s}.onnx", d, "proposal", s,
                           rng.normal(size=(1024, 10)).astype(np.float32))
              for d in ("mnist", "fashion-mnist") for s in (0, 1)]
    models.append(tagged_model(tmp_path / "t.onnx", "mnist", "traditional", 0))
    write_results(tmp_path / "r", evaluate(models, noise_sweep=True, threads=1, suites=suites))
    groups = group_entries(load_entries([tmp_path / "r"])[0])
    saved = []
    monkeypatch.setattr(bgbench.plotting, "save_png", lambda fig, path: saved.append(fig))
    noise_figure(groups, tmp_path / "n.png")
    [fig] = saved
    assert [ax.get_title() for ax in fig.axes] == ["MNIST", "Fashion-MNIST"]
    # Two seeds of proposal: a min..max band in each panel; one traditional seed: none.
    assert [len(ax.collections) for ax in fig.axes] == [1, 1]
    assert [len(ax.lines) for ax in fig.axes] == [2, 1]
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    labels_shown = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels_shown == ["Traditional (1 seed)", "Proposal (2 seeds)"]
    fig.canvas.draw()
    legend_box = fig.legends[0].get_window_extent()
    assert all(legend_box.x0 >= ax.get_window_extent().x1 for ax in fig.axes)
    assert fig.get_suptitle() == "Lines: mean over seeds; bands: min..max over seeds"

    saved.clear()
    noise_figure([g for g in groups if g.method == "traditional"], tmp_path / "one.png")
    assert saved[0].get_suptitle() == "One seed per line"


def test_quick_models_are_called_a_smoke_check(tmp_path):
    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    for preset in ("quick", "full"):
        model = tagged_model(tmp_path / f"{preset}.onnx", "mnist", "proposal", 0, preset=preset)
        write_results(tmp_path / preset, evaluate([model], threads=1, suites=suites))
    assert "A smoke check, not results" in report_markdown([tmp_path / "quick"])
    assert "smoke check" not in report_markdown([tmp_path / "full"])


def test_one_table_convention():
    assert pct(None) == MISSING and pct(0.98765) == "98.8"
    assert markdown_table(["a", "b"], [["x", "1"]]) == "| a | b |\n|---|---:|\n| x | 1 |"
    assert text_table(["name", "n"], [["ab", "10"], ["c", MISSING]]).splitlines() == [
        "name   n", "----  --", "ab    10", "c      " + MISSING]


def test_wall_times_per_method_and_device_and_unrecorded_models(tmp_path, results_dirs):
    r1, r2, *_ = results_dirs
    entries = load_entries([r1, r2])[0]
    proposal = [e for e in entries if e["method"] == "proposal"]
    for entry, (seconds, device) in zip(proposal, ((600.0, "cpu"), (30.0, "cuda")), strict=True):
        entry["metadata"] |= {"bgbench.train_seconds": str(seconds),
                              "bgbench.train_device": device}
    line = readme_results(group_entries(entries)).splitlines()[-1]
    assert line == ("- Training wall time per run (`train_seconds`, on cpu, cuda): proposal on "
                    "cpu 10 min (1 run); proposal on cuda 0.5 min (1 run); all 2 runs 0.2 h. "
                    "1 model did not record it.")


def test_models_not_at_32_are_marked_and_never_averaged_with_32(tmp_path):
    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    models = [tagged_model(tmp_path / "t32.onnx", "mnist", "traditional", 0),
              tagged_model(tmp_path / "p28.onnx", "mnist", "proposal", 0, size=28)]
    write_results(tmp_path / "r", evaluate(models, threads=1, suites=suites))
    entries = load_entries([tmp_path / "r"])[0]
    # Entries written before the harness recorded the size were scored at 32x32.
    for key in ("input_size", "size_rule"):
        del entries[0][key]
    groups = group_entries(entries)
    assert [g.input_size for g in groups] == [(32, "paper-32"), (28, "native-28")]
    rows = [ln.split(" | ")[0] for ln in readme_results(groups).splitlines()[2:4]]
    assert rows == ["| traditional", "| proposal (28x28 native-28)"]
    table = model_table(entries).splitlines()
    assert table[2].split(" | ")[5] == "32" and table[3].split(" | ")[5] == "**28** (native-28)"
    write_results(tmp_path / "r", evaluate(models[1:], threads=1, suites=suites), force=True)
    text = report_markdown([tmp_path / "r"])
    assert "| Proposal (28x28 native-28): ours (1 model) |" in text
    assert "marks models whose input is not the paper's 32x32" in text

    other = tagged_model(tmp_path / "p32.onnx", "mnist", "proposal", 1)
    write_results(tmp_path / "s", evaluate([other], threads=1, suites=suites))
    with pytest.raises(BgbenchError, match="different input sizes.*28x28 native-28 input"):
        group_entries(load_entries([tmp_path / "r", tmp_path / "s"])[0])


def test_the_old_preset_name_reports_as_full(tmp_path):
    [group] = preset_groups(tmp_path, ("paper", "full"))
    assert group.preset == "full" and len(group.entries) == 2


def test_update_readme_rewrites_only_between_the_markers(tmp_path, results_dirs):
    r1, r2, *_ = results_dirs
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{README_BEGIN}\nold table\n{README_END}\nafter\n")
    update_readme(readme, [r1, r2])
    table = readme_results(group_entries(load_entries([r1, r2])[0]))
    assert readme.read_text() == f"# x\n\nbefore\n{README_BEGIN}\n{table}\n{README_END}\nafter\n"
    update_readme(readme, [r1, r2])  # a second run changes nothing
    assert readme.read_text() == f"# x\n\nbefore\n{README_BEGIN}\n{table}\n{README_END}\nafter\n"

    for broken in (f"{README_BEGIN}\nno end\n", f"{README_END}\n{README_BEGIN}\n",
                   f"{README_BEGIN}\n{README_END}\n{README_BEGIN}\n{README_END}\n"):
        readme.write_text(broken)
        with pytest.raises(BgbenchError, match="must hold the line <!-- results-table:begin"):
            update_readme(readme, [r1, r2])
        assert readme.read_text() == broken
    with pytest.raises(BgbenchError, match="does not exist"):
        update_readme(tmp_path / "nowhere.md", [r1])


def test_report_command_with_readme(tmp_path, results_dirs, capsys):
    from bgbench.cli import main

    r1, *_ = results_dirs
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    out = tmp_path / "rep" / "report.md"
    assert main(["report", str(r1), "--out", str(out), "--readme", str(readme)]) == 1
    assert "must hold the line" in capsys.readouterr().err
    assert not out.exists()  # the README is checked before anything is written
    readme.write_text(f"{README_BEGIN}\n{README_END}\n")
    assert main(["report", str(r1), "--out", str(out), "--readme", str(readme)]) == 0
    assert out.read_text() == report_markdown([r1])
    table = readme_results(group_entries(load_entries([r1])[0]))
    assert readme.read_text() == f"{README_BEGIN}\n{table}\n{README_END}\n"


def test_extended_suite_table_over_seeds(tmp_path):
    from bgbench.extended import BACKGROUND_SETS, NAMES

    images, labels = synthetic_data()
    suites = {"mnist": TestSuite("mnist", images, labels, threads=1)}
    rng = np.random.default_rng(1)
    models = [tagged_model(tmp_path / f"p{s}.onnx", "mnist", "proposal", s,
                           rng.normal(size=(1024, 10)).astype(np.float32)) for s in (0, 1)]
    results = evaluate(models, threads=1, suites=suites, suite="extended")
    write_results(tmp_path / "r", results)
    groups = group_entries(load_entries([tmp_path / "r"])[0])
    [row] = [line for line in extended_table(groups).splitlines() if "Proposal" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "MNIST Proposal (2 models)"
    first = 100 * np.array([r.extended_accuracy[NAMES[0]] for r in results])
    assert cells[1] == f"{first.mean():.1f} ± {first.std(ddof=1):.1f}"
    bg = 100 * np.array([r.extended_background_average for r in results])
    assert cells[1 + len(BACKGROUND_SETS)] == f"{bg.mean():.1f} ± {bg.std(ddof=1):.1f}"
    assert "## Extended suite" in report_markdown([tmp_path / "r"])
    # A paper-suite evaluation has no extended table.
    write_results(tmp_path / "p", evaluate(models, threads=1, suites=suites))
    assert extended_table(group_entries(load_entries([tmp_path / "p"])[0])) is None
    assert "## Extended suite" not in report_markdown([tmp_path / "p"])


def test_extended_table_counts_models_a_set_is_missing_from():
    from bgbench.extended import BACKGROUND_SETS, NAMES, PHOTOMETRIC_SETS
    from bgbench.report.grouping import Group
    from bgbench.report.readme import readme_extended
    from bgbench.report.tables import EXTENDED_SHORT_NOTE

    def entry(accuracy: dict[str, float]) -> dict:
        photometric = [accuracy[n] for n in PHOTOMETRIC_SETS if n in accuracy]
        return {"accuracy": {"clean": 0.9}, "extended_accuracy": accuracy,
                "extended_background_average": 0.8,
                "extended_photometric_average": sum(photometric) / len(photometric)}

    full = entry({n: 0.8 for n in NAMES})
    # A result made before the last photometric set joined the suite.
    older = entry({n: 0.6 for n in NAMES[:-1]})
    groups = [Group("mnist", "proposal", "full", [full, older])]
    [row] = [line for line in extended_table(groups).splitlines() if "Proposal" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "MNIST Proposal (2 models)"
    assert cells[1] == "70.0 ± 14.1"
    assert cells[1 + len(BACKGROUND_SETS) + len(PHOTOMETRIC_SETS)] == "80.0 (1)"
    # The background average covers today's sets; the photometric one leaves one out.
    assert cells[1 + len(BACKGROUND_SETS)] == "80.0 ± 0.0"
    assert cells[-1] == "70.0 ± 14.1*"
    readme = readme_extended(groups)
    assert "| 80.0 ± 0.0 | 70.0 ± 14.1* |" in readme and EXTENDED_SHORT_NOTE in readme
    groups[0].entries = [full]
    assert EXTENDED_SHORT_NOTE not in readme_extended(groups)


def test_extended_comparison_names_each_set_where_the_proposal_is_below():
    from bgbench.extended import NAMES
    from bgbench.report.grouping import Group
    from bgbench.report.readme import readme_extended
    from bgbench.report.tables import extended_comparison

    def entry(levels: dict[str, float]) -> dict:
        accuracy = {name: levels.get(name, 0.9) for name in NAMES}
        return {"extended_accuracy": accuracy, "extended_background_average": 0.9,
                "extended_photometric_average": 0.8}

    proposal = Group("mnist", "proposal", "full", [entry({"contrast": 0.97}),
                                                  entry({"contrast": 0.99})])
    traditional = Group("mnist", "traditional", "full", [entry({"contrast": 0.985}),
                                                        entry({"contrast": 0.985})])
    text = extended_comparison([traditional, proposal])
    assert text == ("- MNIST (full): the proposal's mean is below traditional training's on "
                    "contrast (98.0 vs 98.5)")
    traditional.entries = [entry({"contrast": 0.97})]
    assert text != extended_comparison([traditional, proposal])
    assert f"at or above traditional training's on all {len(NAMES)} extended sets" in \
        extended_comparison([traditional, proposal])
    # Another preset's traditional model is not the comparison.
    traditional.preset = "quick"
    assert extended_comparison([traditional, proposal]) is None
    hazy = Group("mnist", "proposal", "full", [entry({"haze": 0.5}), entry({"haze": 0.6})])
    assert "| proposal | 90.0 ± 0.0 | 80.0 ± 0.0 | haze 55.0 |" in readme_extended([hazy])


def test_run_directories_of_one_name_are_told_apart_by_preset(tmp_path):
    for work, preset in (("a", "faithful"), ("b", "paper")):
        run = tmp_path / work / "mnist-proposal-seed0"
        run.mkdir(parents=True)
        (run / "config.json").write_text(json.dumps({"preset": preset}))
    roots = [tmp_path / "a", tmp_path / "b"]
    assert find_run_dir("mnist-proposal-seed0", "full", roots) == roots[1] / "mnist-proposal-seed0"
    assert find_run_dir("mnist-proposal-seed0", "faithful", roots) == (
        roots[0] / "mnist-proposal-seed0")
    assert find_run_dir("mnist-proposal-seed0", "quick", roots) is None


def test_stage3_methods_trained_with_other_options_are_their_own_group():
    from bgbench.ladder import LADDER, recorded_hashes

    def entry(method: str, sha: str | None, seed: int) -> dict:
        metadata = {"bgbench.preset": "full", "bgbench.seed": str(seed)}
        if sha:
            metadata["bgbench.options_sha256"] = sha
        return {"model": f"{method}-{seed}.onnx", "dataset": "mnist", "method": method,
                "n_images": 10, "accuracy": {"clean": 0.9}, "metadata": metadata}

    own = sorted(recorded_hashes("full"))[0]
    step = next(s for s in LADDER if s.preset == "full" and s.changes)
    stranger = "ab" * 32
    groups = group_entries([entry("proposal", own, 0), entry("proposal", step.options_sha256(), 1),
                            entry("proposal", stranger, 2), entry("proposal", None, 3),
                            entry("traditional", step.options_sha256(), 0),
                            entry("truemask", step.options_sha256(), 0)])
    by = {(g.method, g.preset): len(g.entries) for g in groups}
    # The preset's own options (or none recorded) keep its name; a ladder step's options and
    # unknown ones are named; a method without a stage 3 is grouped by its preset alone.
    assert by == {("traditional", "full"): 1, ("proposal", "full"): 2,
                  ("proposal", f"full, ladder step {step.tag}"): 1,
                  ("proposal", "full, options abababab"): 1,
                  ("truemask", f"full, ladder step {step.tag}"): 1}


def test_the_ladder_counts_a_model_in_the_results_and_a_ladder_folder_once(tmp_path):
    from bgbench.report.markdown import _ladder_entries

    def entry(sha: str, searched: bool = False) -> dict:
        e = {"model": f"{sha}.onnx", "sha256": sha, "dataset": "mnist", "method": "proposal",
             "n_images": 10, "accuracy": {"clean": 0.9}, "metadata": {}}
        return {**e, "worst_case": {"budget": 100}} if searched else e

    (tmp_path / "ladder").mkdir()
    (tmp_path / "ladder" / "results.json").write_text(
        json.dumps({"models": [entry("a" * 64, searched=True)]}), encoding="utf-8")
    results = [entry("a" * 64), entry("b" * 64)]
    combined = _ladder_entries(results, [tmp_path / "ladder"])
    assert sorted(e["sha256"][0] for e in combined) == ["a", "b"]
    assert next(e for e in combined if e["sha256"] == "a" * 64).get("worst_case")
