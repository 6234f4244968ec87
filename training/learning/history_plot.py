"""Training curves of a network set, read from its metadata, as one PNG."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cosmicnet_cobaya.networks.network_set import NetworkEntry

CURVES = {
    "loss": ("training loss", "C0", "-"),
    "val_loss": ("validation loss", "C3", "-"),
    "val_mse": ("validation MSE", "C2", "--"),
    "val_projected": ("validation projected", "C1", "--"),
    "val_frequency_projected": ("validation frequency projected", "C4", ":"),
}
"""History keys drawn, with their label, colour and line style."""


def plot_histories(networks: Mapping[str, NetworkEntry], path: Path, columns: int = 3) -> Path:
    """One panel per network: its last run's losses per epoch, the kept epoch marked."""
    trained = {name: entry for name, entry in networks.items() if entry.history.get("val_loss")}
    if not trained:
        raise ValueError("no network of the set has a training history")
    columns = min(columns, len(trained))
    rows = math.ceil(len(trained) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (name, entry) in zip(axes.flat, trained.items(), strict=False):
        history = entry.history
        epochs = range(1, len(history["val_loss"]) + 1)
        for key, (label, colour, style) in CURVES.items():
            values = history.get(key, [])
            if len(values) == len(epochs) and all(value > 0 for value in values):
                ax.plot(epochs, values, color=colour, ls=style, lw=1.0, label=label)
        kept = history.get("best_epoch", [len(epochs)])[0]
        ax.axvline(kept, color="0.5", lw=0.8, ls=":", label=f"kept: epoch {kept}")
        ax.set_yscale("log")
        runs = len(entry.architecture.get("lineage", [])) or 1
        title = f"{name}: last of {runs} run(s)"
        if "training_cosmologies" in entry.architecture:
            title += f", {entry.architecture['training_cosmologies']} cosmologies"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(trained) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
