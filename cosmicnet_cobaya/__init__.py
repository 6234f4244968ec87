"""CosmicNet for Cobaya: CLASS with neural-network source functions.

Use from a cobaya-run YAML file as ``theory: {cosmicnet_cobaya.ClassNet: {...}}``.
"""

from cosmicnet_cobaya.classnet import ClassNet

__all__ = ["ClassNet"]
__version__ = "0.5.0"
