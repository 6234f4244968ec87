"""The one base class of every error CosmicNet raises on purpose.

Each specific error also derives from the built-in exception it refines
(``ValueError``, ``RuntimeError``, ...), so callers may catch either.
"""


class CosmicNetError(Exception):
    """Base of CosmicNet's own errors: catch it to handle any of them."""
