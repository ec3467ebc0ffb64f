"""The ablation ladder: its steps end at the full preset, models are matched to steps by
preset and options hash, and the report's table shows each step with its seed count."""

from __future__ import annotations

import pytest

from bgbench.attack.protocol import PROTOCOL
from bgbench.ladder import LADDER, METHOD
from bgbench.provenance import options_sha256
from bgbench.report.tables import ladder_table
from bgbench.train.config import resolve


def entry(dataset: str, preset: str, sha: str | None, average: float, clean: float,
          method: str = METHOD) -> dict:
    metadata = {"bgbench.preset": preset}
    if sha is not None:
        metadata["bgbench.options_sha256"] = sha
    return {"dataset": dataset, "method": method, "metadata": metadata,
            "background_average": average, "accuracy": {"clean": clean}}


def test_the_ladder_starts_at_faithful_and_ends_at_full():
    first, last = LADDER[0], LADDER[-1]
    assert (first.preset, first.changes) == ("faithful", {})
    assert (last.preset, last.changes) == ("full", {})
    # Each step from the faithful preset adds to the one before; the steps from the full
    # preset each change some of its options (every change a departure from `full`, no two
    # steps alike), and the first of them adds the clean share to the last faithful one.
    faithful_steps = [s for s in LADDER if s.preset == "faithful"]
    for before, after in zip(faithful_steps[1:-1], faithful_steps[2:], strict=True):
        assert before.changes.items() <= after.changes.items()
    full_steps = [s for s in LADDER if s.preset == "full"]
    assert LADDER == (*faithful_steps, *full_steps)
    full = resolve("full")
    for step in full_steps:
        assert all(getattr(full, k) != v for k, v in step.changes.items())
    # The family search grows to 8 candidates and 4 moves, shrinks to 4 and 2, and grows
    # back for `full`, which alone scores it in bfloat16.
    searches = {s.tag: (o.family_candidates, o.family_moves) for s in full_steps
                if (o := resolve("full", s.changes)).family_share > 0}
    assert searches == {"families": (4, 0), "families-8": (8, 0), "moves": (8, 4),
                        "holes": (8, 4), "epochs-12": (8, 4), "search-4x2": (4, 2),
                        "average": (4, 2), "full": (8, 4)}
    assert [s.tag for s in full_steps
            if resolve("full", s.changes).family_precision == "bf16"] == ["full"]
    # The last two steps average stage 3's last epochs.
    assert [s.tag for s in full_steps
            if resolve("full", s.changes).average_epochs] == ["average", "full"]
    differs = {k for k, v in resolve("full", full_steps[0].changes).as_dict().items()
               if v != resolve("faithful", faithful_steps[-1].changes).as_dict()[k]}
    assert differs == {"clean_fraction"}
    assert len({s.options_sha256() for s in LADDER}) == len(LADDER)


def test_the_searched_steps_are_published_with_their_models():
    searched = [s for s in LADDER if s.searched]
    assert searched and all(s.preset == "full" and s.changes for s in searched)
    assert all(len(s.seeds) == 3 or s.tag == "families" for s in searched)


def at_full_index() -> int:
    return len(LADDER) - 1


def test_flags_train_the_step():
    flags = LADDER[1].flags()
    assert flags[:4] == ["--method", "proposal", "--preset", "faithful"]
    assert "--bg-sample" in flags and flags[flags.index("--bg-sample") + 1] == "blocks"


def test_models_match_by_preset_and_options_hash():
    blocks = LADDER[1]
    assert blocks.matches(entry("mnist", "faithful", blocks.options_sha256(), 0.9, 0.9))
    # The faithful preset's own options are step 1, not step 2.
    plain = options_sha256(resolve("faithful").as_dict())
    assert not blocks.matches(entry("mnist", "faithful", plain, 0.9, 0.9))
    assert LADDER[0].matches(entry("mnist", "faithful", plain, 0.9, 0.9))
    # A model that records no hash belongs to no step (its preset's options may have changed
    # since); `paper` is read as `full`; other methods never match.
    full = LADDER[at_full_index()]
    assert full.matches(entry("mnist", "paper", full.options_sha256(), 0.9, 0.9))
    assert not full.matches(entry("mnist", "full", None, 0.9, 0.9))
    assert not LADDER[0].matches(entry("mnist", "faithful", None, 0.9, 0.9))
    assert not LADDER[0].matches(entry("mnist", "faithful", plain, 0.9, 0.9, "traditional"))


def test_a_hash_recorded_before_newer_options_existed_still_matches():
    """A run exported by a bgbench that lacked the newest options (off in the step) recorded
    the hash of its options without them; one that had them switched on is another step."""
    from bgbench.train.config import OFF_WHEN_ABSENT

    faithful = LADDER[0]
    options = resolve("faithful").as_dict()
    newest = list(OFF_WHEN_ABSENT)[-1]
    older = {k: v for k, v in options.items() if k != newest}
    assert faithful.matches(entry("mnist", "faithful", options_sha256(older), 0.9, 0.9))
    # Dropping an older option but keeping a newer one is no bgbench's record.
    oldest = list(OFF_WHEN_ABSENT)[0]
    skipped = {k: v for k, v in options.items() if k != oldest}
    assert not faithful.matches(entry("mnist", "faithful", options_sha256(skipped), 0.9, 0.9))
    switched_on = {**options, newest: 0.5}
    assert not faithful.matches(entry("mnist", "faithful", options_sha256(switched_on), 0.9, 0.9))


def test_ladder_table_rows_seed_counts_and_changes():
    faithful = options_sha256(resolve("faithful").as_dict())
    entries = [entry("mnist", "faithful", faithful, 0.90, 0.97),
               entry("mnist", "faithful", faithful, 0.92, 0.96),
               entry("mnist", "faithful", LADDER[1].options_sha256(), 0.95, 0.98),
               entry("mnist", "full", LADDER[-1].options_sha256(), 0.98, 0.99)]
    table = ladder_table(entries)
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    # The faithful step's two models, the blocks step's one, the full step's one; the steps
    # between have none.
    assert [r[1] for r in rows] == ["2", "1"] + ["0"] * (len(LADDER) - 3) + ["1"]
    assert rows[0][2] == "91.0 ± 1.4" and rows[0][4] == ""
    assert rows[1][2] == "95.0" and rows[1][4] == "+4.0"
    assert rows[2][2] == "–" and rows[3][4] == "–"
    # Only the starting point: no ladder to show.
    assert ladder_table(entries[:2]) is None
    assert "adaptive" not in table


def test_ladder_table_shows_the_worst_case_search_where_models_were_searched():
    def searched(e: dict, adaptive: float, universal: float, budget: int = 100,
                 protocol: str = PROTOCOL) -> dict:
        return {**e, "worst_case": {"budget": budget, "adaptive_accuracy": adaptive,
                                    "universal_accuracy": universal, "protocol": protocol}}

    last, before = LADDER[-1], LADDER[-2]
    step = {**entry("mnist", "full", before.options_sha256(), 0.98, 0.99), "sha256": "f" * 64}
    entries = [step, searched(entry("mnist", "full", last.options_sha256(), 0.99, 0.99), 0.9, 0.98),
               searched(entry("mnist", "full", last.options_sha256(), 0.99, 0.99), 0.8, 0.97, 10)]
    # The step's model was searched in another results folder (same file).
    table = ladder_table(entries, [searched(step, 0.6, 0.91)])
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")]
                              for line in table.splitlines()[2:])}
    assert rows[f"{len(LADDER) - 1}. {before.title}"][5:] == ["60.0 (1)", "91.0"]
    # Only budget-100 searches count.
    assert rows[f"{len(LADDER)}. {last.title}"][5:] == ["90.0 (1)", "98.0"]
    assert rows[f"1. {LADDER[0].title}"][5:] == ["–", "–"]
    # A search of another protocol version is never set beside this one's.
    older = ladder_table(entries, [searched(step, 0.6, 0.91, protocol="bgbench-worst-case-0")])
    rows = {r[0]: r for r in ([c.strip() for c in line.strip("|").split("|")]
                              for line in older.splitlines()[2:])}
    assert rows[f"{len(LADDER) - 1}. {before.title}"][5:] == ["–", "–"]


@pytest.mark.parametrize("step", LADDER, ids=lambda s: s.tag)
def test_every_step_says_why(step):
    assert step.title and step.why.endswith(".")
