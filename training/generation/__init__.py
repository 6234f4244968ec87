"""Training data from CLASS: sampling, one cosmology's sources, crash-safe storage, the runner."""
