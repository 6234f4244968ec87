"""Network sets: loading, input assembly, the NumPy forward pass and the provider.

Nothing in this package imports TensorFlow: a network set trained with Keras is
evaluated with NumPy only.
"""

from cosmicnet_cobaya.networks.network_set import NetworkSet, NetworkSetError, load_network_set

__all__ = ["NetworkSet", "NetworkSetError", "load_network_set"]
