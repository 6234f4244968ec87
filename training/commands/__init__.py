"""Subcommands of the ``cosmicnet`` command; each module exposes ``register(subparsers)``."""
