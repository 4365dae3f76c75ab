"""What `cfc` does because it owns its process: the garbage collector while it starts.

A cache-hit `cfc run` builds ~30,000 objects (NumPy, the runtime's modules and classes, the
decoded model) that all live until the process ends. Python's automatic collections trace
them again and again while they are being built (~60 young and 5 older passes, 30-45 ms on
this machine), and its shutdown traces every one of them once more (60-80 ms): together
more than a third of what the run costs on top of `python -c "import numpy, cffi"`, for
nothing freed (issue 12: start-up). So, only when `main()` is the program (not a caller of
it in Python, such as the tests):

- `pause()` turns automatic collection off for `run` and `eval` while they start;
- `resume(freeze)` turns it back on where the command's own work begins. After a cache hit
  the start-up objects are first moved out of the collector's sight (`gc.freeze`: they are
  never garbage); after a compile, whose cyclic garbage should be freed, it is not;
- `finish()` freezes everything before the interpreter exits, so its final collections
  trace nothing. Objects are still freed by reference counting as modules are cleared;
  only cyclic garbage left at exit is not, which Python never promises to finalise anyway
  (cfc's files are written and closed before main() returns).
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume(freeze: bool) -> None:
    """Collect automatically again if `pause` stopped it; `freeze`: start-up built nothing
    to collect (a cache hit), so leave its objects out of every later collection."""
    global _paused
    if _paused:
        _paused = False
        if freeze:
            gc.freeze()
        gc.enable()


def finish() -> None:
    """At the end of `main()`: collection back on if the command ended before `resume` (an
    error while starting), then everything frozen for the exit."""
    resume(freeze=False)
    gc.freeze()


__all__ = ["finish", "pause", "resume"]
