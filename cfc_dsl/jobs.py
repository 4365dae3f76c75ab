"""Energy jobs: an energy with the specs it calls, the unit of derivation (SymPy-free).

A job is all that deriving an energy reads (spans aside): a memo key, a task a worker
process can derive alone, and what codegen/prepared_store.py keys its stored views by. It
lives apart from derive.py so that a compile whose energies are all stored finds them
without importing SymPy (issue 12).
"""

from __future__ import annotations

from cfc_dsl.model import EnergySpec, Model, called_names

EnergyJob = tuple[EnergySpec, tuple[EnergySpec, ...]]  # an energy and what it calls


def energy_jobs(model: Model) -> tuple[EnergyJob, ...]:
    """Each used energy with the specs it calls, in name order."""
    energies = {e.name: e for e in model.energies}
    return tuple((e, callees(e, energies))
                 for e in sorted(model.used_energies, key=lambda e: e.name))


def jobs_of(energies: tuple[EnergySpec, ...], names: list[str]) -> tuple[EnergyJob, ...]:
    """The jobs of the energies called `names` among `energies`, in name order."""
    by_name = {e.name: e for e in energies}
    return tuple((by_name[n], callees(by_name[n], by_name)) for n in sorted(names))


def callees(energy: EnergySpec, energies: dict[str, EnergySpec]) -> tuple[EnergySpec, ...]:
    """The energies `energy` calls, directly or through others, in name order."""
    found: dict[str, EnergySpec] = {}
    todo = [energy]
    while todo:
        spec = todo.pop()
        names = called_names(spec.body).union(*(called_names(p.default) for p in spec.params
                                                if p.default is not None))
        for name in names - found.keys():
            if name in energies:
                found[name] = energies[name]
                todo.append(energies[name])
    return tuple(found[name] for name in sorted(found))


__all__ = ["EnergyJob", "callees", "energy_jobs", "jobs_of"]
