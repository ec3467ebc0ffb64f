"""The worst-case search as a printed table, from results.json ``models`` entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgbench.tables import pct, text_table


def member_label(member: dict[str, Any]) -> str:
    """``stripes(direction=0, period=5, ...)``: a family member as one short string."""
    params = ", ".join(f"{k}={v}" for k, v in member["params"].items())
    return f"{member['family']}({params})"


def format_worst_case(models: list[dict[str, Any]]) -> str:
    """Accuracy (%) per model: clean, the universal background, worst-of-k, adaptive, and
    the queries the adaptive search spent per attacked image; then each model's universal
    background."""
    searched = [m for m in models if m.get("worst_case")]
    if not searched:
        return "no worst-case search in these results"
    ks = list(searched[0]["worst_case"]["worst_of_k"])
    header = (["model", "dataset", "budget", "clean", "universal"]
              + [f"worst-of-{k}" for k in ks] + ["adaptive", "queries/img"])
    rows = []
    for m in searched:
        wc = m["worst_case"]
        rows.append([Path(m["model"]).stem, m["dataset"], str(wc["budget"]),
                     pct(wc["clean_accuracy"]), pct(wc["universal_accuracy"])]
                    + [pct(wc["worst_of_k"].get(k)) for k in ks]
                    + [pct(wc["adaptive_accuracy"]),
                       f"{wc['queries']['adaptive_per_image_mean']:.1f}"])
    text = "Worst-case backgrounds, accuracy %\n" + text_table(header, rows)
    text += "\n\nUniversal worst background of each model:\n"
    text += "\n".join(f"  {Path(m['model']).stem}: {member_label(m['worst_case']['universal'])}"
                      for m in searched)
    return text
