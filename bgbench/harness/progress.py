"""Progress of an evaluation: a tqdm bar per model on a terminal, else one line per model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO, TypeVar

from bgbench import progress

if TYPE_CHECKING:
    from bgbench.harness.evaluate import ModelResult

T = TypeVar("T")


class Progress(progress.Progress):
    """Reports each model's test sets as they are scored; ``quiet`` reports nothing.

    On a terminal a tqdm bar counts a model's test sets; elsewhere (a log, CI) one line is
    written when a model is done, so logs stay short.
    """

    def __init__(self, quiet: bool = False, stream: TextIO | None = None) -> None:
        super().__init__(enabled=not quiet, stream=stream)
        self.quiet = quiet

    def over(self, model: str, items: list[T]) -> Iterator[T]:
        """Yield ``items`` (one model's test sets), with a bar on a terminal."""
        return self.loop(items, model, unit="set",
                         label=lambda item: getattr(item, "label", str(item)))

    def done(self, result: ModelResult) -> None:
        """One line for a finished model, where there is no bar."""
        if self.bar:
            return
        n_images = sum(r.n_images for r in result.test_sets)
        clean = result.accuracy.get("clean")
        clean_text = "" if clean is None else f", clean {100 * clean:.1f}%"
        self.line(f"{result.model}: {len(result.test_sets)} test sets, {n_images} images"
                  f"{clean_text}, {result.images_per_second:.0f} images/s")
