"""Game families, one module each; importing this package registers them with the loader."""

from mira_theory.games import audit, consensus  # noqa: F401
