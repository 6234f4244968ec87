"""Bridge that replaces CLASS's perturbation step inside a live classy object."""
