"""What a run says while it works, on stderr: a tqdm progress bar for relaxations (a
`Tracker`) and for compile stages, shown only on a terminal, only once a task has taken
about a second (`CFC_PROGRESS_DELAY` seconds; tests set 0), never with --quiet or --json;
and `Stages`, which with --verbose logs each stage with its time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from cfc_dsl.runtime.observe.records import StepRecord

DEFAULT_DELAY = 1.0  # seconds before a bar appears: short runs stay quiet


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get("CFC_PROGRESS_DELAY", DEFAULT_DELAY)))
    except ValueError:
        return DEFAULT_DELAY


def on_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar:
    """A bar over the step limit, with the energy and projected gradient norm beside it."""

    def __init__(self, total: int, stream: IO[str], desc: str = "relax"):
        from tqdm import tqdm

        self.bar = tqdm(total=max(total, 1), file=stream, delay=_delay(), unit="step",
                        desc=desc, leave=False, dynamic_ncols=True, mininterval=0.2)

    def on_step(self, record: StepRecord) -> None:
        if record.accepted and record.step > self.bar.n:
            self.bar.update(min(record.step, self.bar.total) - self.bar.n)
            self.bar.set_postfix_str(f"F {record.energy:.6g}  |pg| {record.grad_norm:.2g}",
                                     refresh=False)

    def on_finish(self, result: Any) -> None:
        self.bar.close()


def progress_bar(total: int, quiet: bool = False, machine: bool = False,
                 stream: IO[str] | None = None) -> ProgressBar | None:
    """A bar for a relaxation of at most `total` steps, or None where none is shown."""
    stream = sys.stderr if stream is None else stream
    if quiet or machine or not on_terminal(stream):
        return None
    return ProgressBar(total, stream)


class Stages:
    """Named stages of a command. `with stages("bind"):` times one; --verbose prints
    `cfc: bind 0.012 s` after each, and on a terminal a bar counts the stages."""

    def __init__(self, names: tuple[str, ...], verbose: bool = False, quiet: bool = False,
                 machine: bool = False, stream: IO[str] | None = None, bar: bool = True):
        self.stream = sys.stderr if stream is None else stream
        self.verbose = verbose and not quiet
        self.times: dict[str, float] = {}
        self.bar = None
        if bar and not (quiet or machine) and on_terminal(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=len(names), file=self.stream, delay=_delay(), unit="stage",
                            leave=False, dynamic_ncols=True)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.bar is not None:
            self.bar.set_description_str(name, refresh=False)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = time.perf_counter() - start
            if self.bar is not None:
                self.bar.update(1)
            if self.verbose:
                self.log(f"{name} {self.times[name]:.3f} s")

    def log(self, message: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        print(f"cfc: {message}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
