"""Jinja templates for generated kernels (installed as the package `cfc_dsl.templates`)."""
