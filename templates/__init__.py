"""Jinja templates for generated kernels (installed as the package `codegen.templates`)."""
