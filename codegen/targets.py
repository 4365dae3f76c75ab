"""What a target language is to the renderer: its kernel template and its source file.

C and CUDA share the IR, the printer and the header/cdef templates; a `Language` names
the few things that differ. The build side (compiler, flags, loading) extends it in
`cfc_dsl.runtime.build.targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cfc_dsl.model import Target


@dataclass(frozen=True)
class Language:
    target: Target
    template: str  # the Jinja template of the kernel source
    source_file: str  # the rendered source's file name in a cache entry or --out-dir


LANGUAGES: dict[Target, Language] = {
    Target.C: Language(Target.C, "kernels.c.j2", "kernels.c"),
    Target.CUDA: Language(Target.CUDA, "kernels.cu.j2", "kernels.cu"),
}


def language(target: Target) -> Language:
    return LANGUAGES[target]


__all__ = ["LANGUAGES", "Language", "language"]
