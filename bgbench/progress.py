"""Progress on a stream (stderr by default): a tqdm bar over a loop on a terminal, and plain
lines, which logs and CI keep short, everywhere.

Torch-free and onnxruntime-free: evaluation (``bgbench.harness.progress``) and training
(``bgbench.train.trainer``) both build on it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """``enabled=False`` shows nothing at all (a quiet run, a distributed rank other than
    the main one); ``bars=False`` keeps the lines and drops the bars. Bars are drawn only
    where the stream is a terminal."""

    def __init__(self, enabled: bool = True, bars: bool = True, stream: TextIO | None = None
                 ) -> None:
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream
        self.bar = enabled and bars and self.stream.isatty()
        # The bar of the latest loop, kept after it ends (its last postfix stays readable).
        self._tqdm: Any = None

    def loop(self, items: Sequence[T], desc: str, *, unit: str = "it", leave: bool = True,
             label: Callable[[T], str] | None = None) -> Iterator[T]:
        """Yield ``items``, counted on a bar titled ``desc`` where bars are drawn, with
        ``label(item)`` beside it; ``leave=False`` clears the bar when the loop ends."""
        if not self.bar:
            yield from items
            return
        from tqdm import tqdm

        with tqdm(total=len(items), desc=desc, unit=unit, leave=leave, file=self.stream,
                  dynamic_ncols=True) as bar:
            self._tqdm = bar
            for item in items:
                if label is not None:
                    bar.set_postfix_str(label(item), refresh=False)
                yield item
                bar.update(1)

    def line(self, message: str) -> None:
        """Write ``message`` as one line, unless progress is off."""
        if self.enabled:
            print(message, file=self.stream, flush=True)
