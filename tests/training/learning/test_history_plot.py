"""The training-curve figure of a network set."""

from __future__ import annotations

import pytest

from cosmicnet_cobaya.networks.network_set import (
    read_metadata,
)


def _png_width(path):
    """Width in pixels of a PNG."""
    import matplotlib.image

    return matplotlib.image.imread(path).shape[1]


def test_history_plot_of_a_trained_set(trained_set, tmp_path):
    """``cosmicnet history`` draws every trained network's curves; no history is an error."""
    from dataclasses import replace

    from training.cli import main
    from training.learning.history_plot import plot_histories

    out = tmp_path / "curves.png"
    assert main(["history", str(trained_set), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    networks = read_metadata(trained_set).networks
    assert all(entry.history["val_loss"] for entry in networks.values())
    # One trained network gets one panel, not a row with empty ones beside it.
    name = next(iter(networks))
    single = plot_histories({name: networks[name]}, tmp_path / "one.png")
    assert _png_width(single) < _png_width(out) or len(networks) == 1
    assert _png_width(single) <= 400
    untrained = {name: replace(entry, history={}) for name, entry in networks.items()}
    with pytest.raises(ValueError, match="no network of the set has a training history"):
        plot_histories(untrained, tmp_path / "none.png")
    assert main(["history", str(tmp_path / "missing"), "--out", str(out)]) == 2
