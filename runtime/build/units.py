"""Compile the kernels as several translation units at once, then link them into the library.

gcc compiles one translation unit on one core, and the kernels of a model are most of the
time of a cold compile. The renderer splits them into units of balanced size (by whole
energies, the same split on every machine: codegen/render.py), so a miss here compiles each
unit with `-c` in its own subprocess, as many at once as there are cores, and one more run
links the objects. Each compile carries -Werror, so the check that the generated source is
warning-free is unchanged; only the unit that holds the threaded drivers gets -fopenmp
(the others have no pragma to read). A model rendered as one unit is compiled straight into
the library, as before. The objects are removed once linked: an entry holds the sources,
the library and its metadata.

Kept here rather than handed to a build system (make -j, ninja): a handful of compiler runs
with one link is what every such tool would run, and the compiler subprocesses, their logs
and the blame for a failure (build/compiler.py) stay the same as for one run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from cfc_dsl.cores import available
from cfc_dsl.runtime.build.compiler import run_compiler
from cfc_dsl.runtime.build.openmp import OPENMP_FLAGS
from cfc_dsl.runtime.build.toolchain import SHARED_FLAGS, WARNING_FLAGS, Toolchain

if TYPE_CHECKING:  # the type alone: render's module is the miss path's, imported there
    from cfc_dsl.codegen.render import Unit


def object_name(unit: Unit) -> str:
    return str(Path(unit.name).with_suffix(".o"))


def cores() -> int:
    """Cores this process may run on: the compiles at once. Not the idle cores (as the
    kernels' threads are): a compile that waits for a busy core still finishes, where
    running the units one after another is certain to take their sum."""
    return available()


def object_flags(tc: Toolchain, openmp: bool) -> list[str]:
    """The toolchain's flags for a `-c` compile: the link-only ones dropped (clang rejects an
    unused -shared under -Werror), -fopenmp kept only for a unit that needs it; -fPIC stays."""
    link_only = set(SHARED_FLAGS) - {"-fPIC"}
    return [f for f in tc.flags if f not in link_only and (openmp or f not in OPENMP_FLAGS)]


def object_command(tc: Toolchain, unit: Unit) -> Callable[[str], list[str]]:
    """`run_compiler`'s command for one unit: its source into its object, and the trivial
    probe (when the compile fails) the same way into probe.o."""
    def command(src: str) -> list[str]:
        out = object_name(unit) if src == unit.name else str(Path(src).with_suffix(".o"))
        return [*tc.command, *object_flags(tc, unit.openmp), *WARNING_FLAGS, "-c", src,
                "-o", out]
    return command


def link_command(tc: Toolchain, units: Sequence[Unit], library: str,
                 first: str) -> Callable[[str], list[str]]:
    """`run_compiler`'s command for the link. `first` stands for the link itself; any other
    file is the trivial probe, built into a library the same way (so a failed link is told
    from a broken toolchain as a failed compile is)."""
    def command(src: str) -> list[str]:
        if src == first:
            return [*tc.command, *tc.flags, *map(object_name, units), "-o", library, "-lm"]
        return [*tc.command, *tc.flags, src, "-o", "probe.so", "-lm"]
    return command


def compile_units(name: str, label: str, advice: str, tc: Toolchain, units: Sequence[Unit],
                  library: str, staging: Path, log: str) -> None:
    """Write `units` into `staging`, compile them at once and link them into `library`.

    Each compile logs into its own file; the logs are joined into `log` in unit order (the
    same text however the runs interleave), and the first failure in unit order is raised.
    The objects are removed after the link, whether it succeeds or not."""
    for unit in units:
        (staging / unit.name).write_text(unit.source)
    logs = [f"{log}.{i}" for i in range(len(units))]

    def one(i: int) -> None:
        unit = units[i]
        run_compiler(name, label, advice, object_command(tc, unit), unit.name, staging, logs[i])

    try:
        with ThreadPoolExecutor(max_workers=min(len(units), cores())) as pool:
            # the largest first (by its source's size), so no long compile starts last
            order = sorted(range(len(units)), key=lambda i: -len(units[i].source))
            submitted = {i: pool.submit(one, i) for i in order}
        futures = [submitted[i] for i in range(len(units))]
        _join_logs(staging, logs, log)
        for future in futures:
            future.result()  # the first failure in unit order
        first = units[0].name
        run_compiler(name, label, advice, link_command(tc, units, library, first), first,
                     staging, log)
    finally:
        for unit in units:
            (staging / object_name(unit)).unlink(missing_ok=True)


def _join_logs(staging: Path, logs: Sequence[str], log: str) -> None:
    with (staging / log).open("a") as out:
        for part in logs:
            path = staging / part
            if path.exists():
                out.write(path.read_text(encoding="utf-8", errors="replace"))
                path.unlink()


__all__ = ["compile_units", "cores", "link_command", "object_command", "object_flags"]
