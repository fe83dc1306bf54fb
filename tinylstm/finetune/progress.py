"""A plain progress bar on stderr: redrawn in place on a terminal, a line per validation elsewhere
(logs stay readable)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}:{s:02d}"


class Bar:
    """``update(step, loss)`` after each training step, ``note(text)`` after each validation."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last = ""
        self.loss = float("nan")

    def _line(self, step: int) -> str:
        done = int(self.width * step / self.total)
        spent = time.perf_counter() - self.start
        eta = spent / step * (self.total - step) if step else 0.0
        return (f"finetune [{'#' * done}{'.' * (self.width - done)}] {step}/{self.total} "
                f"loss {self.loss:.4g} {_clock(spent)} (left {_clock(eta)}) {self.last}")

    def update(self, step: int, loss: float) -> None:
        self.loss = loss
        if self.tty:
            self.stream.write("\r" + self._line(step) + "\033[K")
            self.stream.flush()

    def note(self, step: int, text: str) -> None:
        self.last = text
        if self.tty:
            self.update(step, self.loss)
        else:
            self.stream.write(self._line(step) + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
