"""Judging a network set against full CLASS: validation, Planck, Fisher, benchmarks, chains."""
