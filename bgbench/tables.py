"""Tables of results, as Markdown (reports, README) or aligned plain text (the terminal).

Torch-free. One convention throughout: a value that was not measured is ``MISSING``;
accuracies are percentages with one decimal.
"""

from __future__ import annotations

MISSING = "–"


def pct(value: float | None) -> str:
    """A fraction in [0, 1] as a percentage with one decimal; None is ``MISSING``."""
    return MISSING if value is None else f"{100 * value:.1f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table: the first column left-aligned (labels), the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table padded to column width, with a rule under the header: the first
    column left-aligned, the others right-aligned."""
    table = [header, *rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True)))
             for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
