"""Energy names that the generated C cannot take, and why (the one registry of them).

Every symbol generated for one energy E is spelled `cfc_<kind>_E` with `kind` a nonempty
run of letters (`cfc_e_E`, `cfc_eg_E`, `cfc_egm_E`, `cfc_kernel_E`, `cfc_hb_E`, ...). cfc's
own internal helpers start with `cfc__` (two underscores), which no such name can. A few
fixed names are not internal, because the runtime or cgloop's C (runtime/solvers/) spells
them too, and they have the per-energy form: an energy named as their tail would define
them a second time. The checker rejects those names (cfc_dsl/checker.py), and
tests/test_symbol_clash.py renders models to check that no other fixed name has that form.
"""

from __future__ import annotations

from types import MappingProxyType

# energy name -> what of the generated C it would clash with
RESERVED_ENERGY_NAMES = MappingProxyType({
    "all": "the entry point 'cfc_eg_all' (every family's gradient in one call)",
    "fn": "the kernel function types 'cfc_er_fn', 'cfc_egr_fn', 'cfc_egv_fn', "
          "'cfc_hvr_fn' and 'cfc_hdr_fn'",
})

__all__ = ["RESERVED_ENERGY_NAMES"]
