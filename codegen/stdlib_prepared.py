"""Write the package's prepared stdlib energies: `python -m cfc_dsl.codegen.stdlib_prepared`.

Every standard-library energy, prepared (SymPy) and stored in codegen/stdlib_prepared.json
with the generator digest it was prepared under (codegen/prepared_store.py), so a compile
of a model of stdlib energies imports no SymPy. Any edit of the language or codegen sources
makes the file stale (then it is ignored); run this again, and tests/test_prepared_store.py
checks that it is current.
"""

from __future__ import annotations

from pathlib import Path

from cfc_dsl.checker import stdlib_energies
from cfc_dsl.codegen import prepared_store
from cfc_dsl.codegen.prepare import prepare
from cfc_dsl.codegen.viewtypes import Prepared
from cfc_dsl.jobs import jobs_of


def stdlib_prepared() -> dict[str, Prepared]:
    """Each stdlib energy's job key -> its views, prepared here (not looked up)."""
    energies = stdlib_energies()
    jobs = jobs_of(energies, [e.name for e in energies])
    return {key: prepare(job) for job in jobs if (key := prepared_store.job_key(job)) is not None}


def write() -> Path:
    prepared_store.SHIPPED.write_text(prepared_store.shipped_text(stdlib_prepared()),
                                      encoding="utf-8")
    return prepared_store.SHIPPED


if __name__ == "__main__":
    print(f"wrote {write()}")
