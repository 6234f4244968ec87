"""Planck 2018 reference setup shared by the demo, the tests and the validation.

The plik_lite data are never shipped: :func:`find_packages_path` locates a Cobaya
``packages_path`` that holds them at run time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PLIK_LITE = "planck_2018_highl_plik.TTTEEE_lite_native"
PLIK_LITE_DATA = Path("data") / "planck_2018_pliklite_native" / "cl_cmb_plik_v22.dat"

BEST_FIT: dict[str, float] = {
    "omega_b": 0.022383,
    "omega_cdm": 0.12011,
    "H0": 67.32,
    "logA": 3.0448,
    "n_s": 0.96605,
    "tau_reio": 0.0543,
    "A_planck": 1.00044,
}
"""Planck 2018 TT,TE,EE+lowE+lensing best fit (one 0.06 eV neutrino)."""

LCDM_EXTRA_ARGS: dict[str, Any] = {"N_ur": 2.0328, "N_ncdm": 1, "m_ncdm": 0.06}
"""Fixed CLASS settings of the Planck baseline model."""


def _has_plik_lite(path: Path) -> bool:
    return (path / PLIK_LITE_DATA).is_file()


def folders_above(start: Path | None = None) -> list[Path]:
    """``start`` (default: the working directory) and its parents, then this package's
    folder and its parents: where data kept outside the project is looked for."""
    origins = (start or Path.cwd(), Path(__file__).resolve().parent)
    return [
        folder for origin in origins for folder in (origin.resolve(), *origin.resolve().parents)
    ]


def find_packages_path(start: Path | None = None) -> Path | None:
    """A Cobaya packages_path holding the Planck 2018 plik_lite data, or None.

    Looks at $COBAYA_PACKAGES_PATH, then at ``shared/cobaya_packages`` in the
    folders above ``start`` (default: the working directory) and above this
    package.
    """
    candidates: list[Path] = []
    if os.environ.get("COBAYA_PACKAGES_PATH"):
        candidates.append(Path(os.environ["COBAYA_PACKAGES_PATH"]))
    for folder in folders_above(start):
        candidates.append(folder / "shared" / "cobaya_packages")
        candidates.append(folder / "cobaya_packages")
    for candidate in candidates:
        if _has_plik_lite(candidate):
            return candidate.resolve()
    return None


def cosmology_params(point: Mapping[str, float]) -> dict[str, Any]:
    """Cobaya ``params`` block fixing the LCDM parameters of ``point`` (logA -> A_s)."""
    params: dict[str, Any] = {
        name: point[name] for name in ("omega_b", "omega_cdm", "H0", "n_s", "tau_reio")
    }
    params["logA"] = {"value": point["logA"], "drop": True}
    params["A_s"] = {"value": "lambda logA: 1e-10 * np.exp(logA)"}
    for name, value in point.items():
        if name not in params and name != "A_planck":
            params[name] = value
    return params


def model_info(
    theory: Mapping[str, Any],
    point: Mapping[str, float],
    packages_path: Path | None = None,
) -> dict[str, Any]:
    """Cobaya info for ``theory`` at ``point``: plik_lite if available, else none.

    Without plik_lite the ``one`` likelihood is used, so spectra can still be
    requested with ``model.add_requirements``.
    """
    info: dict[str, Any] = {"params": cosmology_params(point), "theory": dict(theory)}
    if packages_path is not None:
        info["packages_path"] = str(packages_path)
        info["likelihood"] = {PLIK_LITE: None}
        info["params"]["A_planck"] = point.get("A_planck", BEST_FIT["A_planck"])
    else:
        info["likelihood"] = {"one": None}
    return info
