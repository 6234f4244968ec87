"""Figures of ``cosmicnet validate`` (paper figures 3-7), written as PNG files."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from training.evaluation.plik import PlikLite
from training.evaluation.validate import cosmic_variance

SOURCE_LABELS = {"t0": r"$S_{T_0}$", "t1": r"$S_{T_1}$", "t2": r"$S_{T_2}$"}
SPECTRUM_LABELS = {
    "tt": r"$\Delta C_\ell^{TT}/C_\ell^{TT}$",
    "te": r"$\Delta C_\ell^{TE}/\sqrt{C_\ell^{TT}C_\ell^{EE}}$",
    "ee": r"$\Delta C_\ell^{EE}/C_\ell^{EE}$",
    "pp": r"$\Delta C_\ell^{\phi\phi}/C_\ell^{\phi\phi}$",
}


def _map(ax: Any, k: np.ndarray, tau: np.ndarray, values: np.ndarray, title: str) -> None:
    limit = np.max(np.abs(values)) or 1.0
    mesh = ax.pcolormesh(k, tau, values, cmap="RdBu_r", vmin=-limit, vmax=limit, shading="auto")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    ax.figure.colorbar(mesh, ax=ax)


def plot_sources(material: Mapping[str, Any], out: Path) -> list[Path]:
    """Maps of S_T0, S_T1, S_T2 from CLASS and the networks, their difference,
    and the reionization region of S_T2 enhanced."""
    full, net = material["class_sources"], material["network_sources"]
    k, tau = full["k"], full["tau"]
    names = [name for name in ("t0", "t1", "t2") if name in full and name in net]
    fig, axes = plt.subplots(len(names), 3, figsize=(13, 3.4 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        label = SOURCE_LABELS[name]
        _map(axes[row, 0], k, tau, full[name], f"{label} CLASS")
        _map(axes[row, 1], k, tau, net[name], f"{label} network")
        _map(axes[row, 2], k, tau, net[name] - full[name], f"{label} network - CLASS")
    for ax in axes[-1]:
        ax.set_xlabel(r"$k$ [1/Mpc]")
    for ax in axes[:, 0]:
        ax.set_ylabel(r"$\tau$ [Mpc]")
    fig.suptitle(f"Source functions at {material['point']}", fontsize=9)
    fig.tight_layout()
    paths = [out / "sources.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    if "t2" in names:
        late = tau > 0.25 * tau[-1]
        small_k = k < 0.02
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), squeeze=False)
        sub = np.ix_(late, small_k)
        _map(axes[0, 0], k[small_k], tau[late], full["t2"][sub], r"$S_{T_2}$ CLASS, reionization")
        _map(axes[0, 1], k[small_k], tau[late], net["t2"][sub], r"$S_{T_2}$ network")
        _map(axes[0, 2], k[small_k], tau[late], (net["t2"] - full["t2"])[sub], "difference")
        for ax in axes[0]:
            ax.set_xlabel(r"$k$ [1/Mpc]")
        axes[0, 0].set_ylabel(r"$\tau$ [Mpc]")
        fig.tight_layout()
        paths.append(out / "sources_reionization.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def plot_spectra(material: Mapping[str, Any], out: Path) -> list[Path]:
    """Per-l errors of every test cosmology with the Planck error band, and the
    binned errors in units of the plik_lite error."""
    errors: Sequence[Mapping[str, np.ndarray]] = material["errors"]
    reference = material["reference_dl"]
    plik: PlikLite | None = material["plik"]
    ell = np.arange(2, 2 + len(errors[0]["tt"]))
    variance = cosmic_variance(reference)
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    for ax, name in zip(axes, ("tt", "te", "ee", "pp"), strict=True):
        for error in errors:
            ax.plot(ell, error[name], lw=0.5, alpha=0.6, color="C0")
        if name == "te":
            scale = np.sqrt(np.abs(reference["tt"] * reference["ee"]))
        else:
            scale = np.abs(reference[name])
        band = (variance[name] / np.where(scale > 0, scale, np.inf))[ell]
        label = "cosmic variance"
        if plik is not None and name != "pp":
            binned_scale = plik.binning[name] @ scale[: plik.l_max + 1]
            planck = plik.diagonal_error(name) / np.abs(binned_scale)
            ax.step(
                plik.bin_centres[name],
                planck,
                where="mid",
                color="C3",
                lw=0.8,
                label="Planck plik_lite error",
            )
            ax.step(plik.bin_centres[name], -planck, where="mid", color="C3", lw=0.8)
        ax.fill_between(ell, -band, band, color="0.85", label=label, zorder=0)
        ax.set_ylabel(SPECTRUM_LABELS[name])
        ax.axhline(0, color="k", lw=0.5)
        values = np.abs(np.concatenate([e[name] for e in errors]))
        limit = max(np.nanpercentile(values, 99.5), 1e-4) if np.any(np.isfinite(values)) else 1e-4
        ax.set_ylim(-3 * limit, 3 * limit)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xscale("log")
    axes[-1].set_xlabel(r"$\ell$")
    fig.suptitle(f"ClassNet - CLASS, {len(errors)} test cosmologies (lensed)", fontsize=10)
    fig.tight_layout()
    paths = [out / "spectra_errors.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    if plik is not None and material["planck_units"]:
        paths.append(
            _plot_in_planck_units(
                material["planck_units"],
                plik.bin_centres,
                "Binned differences in units of the plik_lite error (dashed: 5%)",
                out / "spectra_planck_units.png",
            )
        )
    if plik is not None and material.get("per_l_planck_units"):
        ell_all = np.arange(plik.l_max + 1)
        paths.append(
            _plot_in_planck_units(
                material["per_l_planck_units"],
                dict.fromkeys(("tt", "te", "ee"), ell_all),
                "Per-l differences in units of the unbinned Planck error (dashed: 5%)",
                out / "spectra_planck_units_per_l.png",
            )
        )
    return paths


def _plot_in_planck_units(
    in_units: Sequence[Mapping[str, np.ndarray]],
    positions: Mapping[str, np.ndarray],
    title: str,
    path: Path,
) -> Path:
    """One panel per spectrum: every cosmology's differences against l, with +-5% lines."""
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for ax, name in zip(axes, ("tt", "te", "ee"), strict=True):
        for entry in in_units:
            ax.plot(positions[name], entry[name], lw=0.6, alpha=0.6, color="C0")
        ax.axhline(0, color="k", lw=0.5)
        for level in (0.05, -0.05):
            ax.axhline(level, color="C3", lw=0.6, ls="--")
        ax.set_ylabel(rf"$\Delta D_\ell^{{{name.upper()}}} / \sigma_{{\rm Planck}}$")
    axes[0].set_title(title)
    axes[-1].set_xlabel(r"$\ell$")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


class FigureWriter:
    """Callable handed to ``run_validation``: writes each figure into ``out``."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.written: list[Path] = []

    def __call__(self, kind: str, material: Mapping[str, Any]) -> None:
        """Write the figure(s) of ``kind`` ("sources" or "spectra")."""
        writer = {"sources": plot_sources, "spectra": plot_spectra}[kind]
        self.written.extend(writer(material, self.out))
