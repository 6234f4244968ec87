"""Planck 2018 low-l TT as two Gaussian bins: an offline Cobaya likelihood.

The Planck 2018 Commander low-l TT likelihood summarised by plik_lite's two
low-l bins (l = 2-15 and 16-29; Prince & Dunkley 2019): each bin is the
l(l+1)-weighted sum of C_l^TT [muK^2] with a Gaussian error, the theory divided
by A_planck^2 as in plik_lite.  The data files (``CTT_bin_low_ell_2018.dat``,
``blmin_low_ell.dat``, ``blmax_low_ell.dat``, ``bweight_low_ell.dat``,
``plmin_low_ell.dat``) are not shipped: point ``data_folder`` at them, set
the environment variable ``COSMICNET_LOWL_TT_BINS``, or keep them in
``shared/data/planck_2018_lowl_tt_bins`` above the working directory; with ``missing: skip`` a
run without them goes on without low-l TT (and says so).  Use from YAML as

    likelihood:
      cosmicnet_cobaya.lowl_tt.LowlTTBins: {data_folder: /path/to/planck_2018_lowl_tt_bins}
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from cobaya.likelihood import Likelihood
from cobaya.log import LoggedError

from cosmicnet_cobaya.planck import folders_above

DATA_FILES = ("CTT_bin_low_ell_2018.dat", "blmin_low_ell.dat", "blmax_low_ell.dat",
              "bweight_low_ell.dat", "plmin_low_ell.dat")  # fmt: skip
ENVIRONMENT_VARIABLE = "COSMICNET_LOWL_TT_BINS"


DEFAULT_LOCATION = Path("shared") / "data" / "planck_2018_lowl_tt_bins"


def find_data_folder(data_folder: str | None, start: Path | None = None) -> Path | None:
    """The folder holding the bins: the option, else the environment variable, else
    ``shared/data/planck_2018_lowl_tt_bins`` in a folder above ``start`` (default: the
    working directory) or above this package; None when none holds them."""
    given = data_folder or os.environ.get(ENVIRONMENT_VARIABLE)
    if given:
        candidates = [Path(given).expanduser()]
    else:
        candidates = [folder / DEFAULT_LOCATION for folder in folders_above(start)]
    for path in candidates:
        if all((path / name).is_file() for name in DATA_FILES):
            return path
    return None


class LowlTTBins(Likelihood):
    """Planck 2018 low-l TT, two Gaussian bins of C_l^TT (see the module docstring)."""

    data_folder: str | None = None
    missing: str = "error"
    """Without the data files: ``error``, or ``skip`` (log-likelihood 0, with a warning)."""

    def initialize(self) -> None:
        """Read the bins, their l ranges and weights."""
        if self.missing not in ("error", "skip"):
            raise LoggedError(self.log, "missing=%r: use error or skip.", self.missing)
        folder = find_data_folder(self.data_folder)
        self.active = folder is not None
        if folder is None and self.missing == "skip":
            self.log.warning(
                "Low-l TT bins not found (data_folder=%r, $%s unset or wrong): "
                "running WITHOUT low-l TT.", self.data_folder, ENVIRONMENT_VARIABLE,
            )  # fmt: skip
            return
        if folder is None:
            raise LoggedError(
                self.log,
                "Low-l TT bins not found (data_folder=%r, $%s=%r): set data_folder to the "
                "folder holding %s.",
                self.data_folder, ENVIRONMENT_VARIABLE, os.environ.get(ENVIRONMENT_VARIABLE),
                ", ".join(DATA_FILES),
            )  # fmt: skip
        bins = np.loadtxt(folder / "CTT_bin_low_ell_2018.dat", ndmin=2)
        offset = int(np.loadtxt(folder / "plmin_low_ell.dat"))
        self.lmin = np.loadtxt(folder / "blmin_low_ell.dat", ndmin=1).astype(int) + offset
        self.lmax = np.loadtxt(folder / "blmax_low_ell.dat", ndmin=1).astype(int) + offset
        self.weights = np.loadtxt(folder / "bweight_low_ell.dat", ndmin=1)
        self.offset = offset
        self.data, self.sigma = bins[:, 1], bins[:, 2]

    def get_requirements(self) -> dict[str, Any]:
        """C_l^TT up to the last bin's end."""
        return {"Cl": {"tt": int(self.lmax[-1])}} if self.active else {}

    def get_can_support_params(self) -> list[str]:
        """A_planck, shared with plik_lite."""
        return ["A_planck"]

    def binned(self, cl_tt: np.ndarray) -> np.ndarray:
        """The weighted bin sums of C_l^TT [muK^2] (array from l = 0)."""
        return np.array([
            np.sum(self.weights[lo - self.offset : hi - self.offset + 1] * cl_tt[lo : hi + 1])
            for lo, hi in zip(self.lmin, self.lmax, strict=True)
        ])  # fmt: skip

    def logp(self, **params_values: float) -> float:
        """Gaussian log-likelihood of the two bins."""
        if not self.active:
            return 0.0
        cl = self.provider.get_Cl(ell_factor=False, units="FIRASmuK2")["tt"]
        theory = self.binned(cl) / params_values.get("A_planck", 1.0) ** 2
        return float(-0.5 * np.sum(((theory - self.data) / self.sigma) ** 2))
