"""How relative TT and TE errors at a few multipoles move the Planck posterior.

The spectrum projection of the loss (``training.learning.line_of_sight``) gives, per
cosmology, the relative TT errors r_i (and with its TE term the TE errors
t_i, relative to sqrt(C^TT C^EE)) at the multipoles l_i.  Read as error
patterns r(l), t(l) interpolated linearly between the multipoles (constant
beyond the ends) and applied to the spectra at the Planck best fit, they
change the plik_lite model by

    delta = B(D_l^TT r(l)) + B(sqrt(D_l^TT D_l^EE) t(l)),

and move the best fit by d theta = F^-1 J^T C^-1 delta (``training.evaluation.fisher``,
with A_planck and the tau_reio prior as in ``cosmicnet validate``, and the BAO-like
block of the runner's settings, whose observables the C_l errors leave alone).  Both are
linear in (r, t), so

    d theta_p / sigma_p = sum_i M_pi r_i + sum_i M_p(n+i) t_i,

and the loss can add w sum_p (M (r, t))_p^2: a penalty on the error patterns
that would shift the posterior, weighed as the likelihood weighs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from training.evaluation.fisher import posterior_shift
from training.evaluation.plik import PlikLite
from training.evaluation.validate import data_vector, fisher_reference, joint_fisher_inputs


def hat_functions(multipoles: Sequence[int], l_max: int) -> np.ndarray:
    """Linear interpolation weights from ``multipoles`` onto l = 0..l_max, shape (n, l_max+1).

    Row i is the pattern with 1 at multipole i and 0 at the others; beyond the
    first and last multipole the pattern is constant.
    """
    nodes = np.asarray(multipoles, dtype=float)
    if nodes.size == 0 or np.any(np.diff(nodes) <= 0):
        raise ValueError("multipoles must be a non-empty increasing list")
    ell = np.arange(l_max + 1, dtype=float)
    return np.stack([np.interp(ell, nodes, row) for row in np.eye(nodes.size)])


def shift_matrix(
    runner: Any,
    plik: PlikLite,
    multipoles: Sequence[int],
    with_te: bool = True,
    point: Mapping[str, float] | None = None,
    polarisation: bool = False,
) -> dict[str, list[float]]:
    """Parameter name -> shift in sigma per unit relative error at each multipole:
    TT (with ``polarisation``: EE) first, then (``with_te``) TE.

    ``runner`` gives full-CLASS spectra (``class_spectra``, e.g.
    :class:`training.evaluation.pairs.FullClass`) and its ``settings.bao``;
    ``point`` defaults to the Planck best fit.  A_planck, a nuisance, is left out.
    """
    point = dict(point or fisher_reference())
    spectra = runner.class_spectra(point)
    reference = data_vector(plik, spectra)
    names, jacobian, priors, inverse = joint_fisher_inputs(runner, plik, point, reference)
    dl = spectra.dl
    hats = hat_functions(multipoles, len(dl["tt"]) - 1)
    zero = {name: np.zeros_like(dl[name]) for name in ("tt", "te", "ee")}
    first = "ee" if polarisation else "tt"
    patterns = [{**zero, first: dl[first] * hat} for hat in hats]
    if with_te:
        scale = np.sqrt(np.clip(dl["tt"] * dl["ee"], 0.0, None))
        patterns += [{**zero, "te": scale * hat} for hat in hats]
    columns = []
    for pattern in patterns:
        delta = np.zeros(reference.size)
        delta[: plik.data.size] = plik.binned(pattern)
        shift = posterior_shift(names, jacobian, inverse, delta, priors)
        columns.append(shift.shift_in_sigma)
    matrix = np.column_stack(columns)
    return {
        name: [float(value) for value in row]
        for name, row in zip(names, matrix, strict=True)
        if name != "A_planck"
    }
