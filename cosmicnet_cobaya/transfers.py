"""The slow half of ClassNet's fast-slow split: a Cobaya helper theory.

Cobaya blocks and oversamples parameters by the components they feed. As
Cobaya's CAMB theory does with ``camb.transfers``, ClassNet hands its
non-primordial parameters to this helper, which computes a whole evaluation
(with ClassNet's primordial parameters of the same point). ClassNet itself
finds that computation done; when only its primordial parameters change
(the helper's cached state serves), it reruns only what they touch:
primordial, the non-linear step and the lensing transfer functions it
feeds, harmonic and lensing.

Each cached state of the helper owns one CLASS object, so that Cobaya's
re-use of a cached state (after a rejected slow step, say) finds the sources
it computed. Correctness never rests on the split: the CLASS object compares
all its parameters and recomputes in full whenever more than the primordial
ones changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cobaya.theory import HelperTheory

from cosmicnet_cobaya.hooked_class import HookedClass

if TYPE_CHECKING:
    from cosmicnet_cobaya.classnet import ClassNet

TRANSFERS_PRODUCT = "classnet_transfers"
"""What the helper provides to ClassNet: (its parameters, the CLASS object)."""

SLOW_PARAMETERS = frozenset(
    {
        "omega_b",
        "Omega_b",
        "omega_cdm",
        "Omega_cdm",
        "omega_m",
        "Omega_m",
        "H0",
        "h",
        "100*theta_s",
        "theta_s_100",
        "tau_reio",
        "z_reio",
        "N_ur",
        "m_ncdm",
        "omega_ncdm",
        "Omega_ncdm",
        "Omega_k",
        "Omega_Lambda",
        "Omega_fld",
        "w0_fld",
        "wa_fld",
        "cs2_fld",
        "YHe",
        "T_cmb",
    }
)
"""CLASS inputs the helper takes (with Cobaya's renames onto them); any other
sampled input goes to ClassNet itself, where it costs a full computation."""


class ClassNetTransfers(HelperTheory):
    """ClassNet's CLASS computations for its non-primordial parameters."""

    def __init__(self, classnet: ClassNet, name: str, info: dict, timing: Any = None) -> None:
        super().__init__(info, name, timing=timing)
        self.classnet = classnet
        self._pool: list[HookedClass] = []

    def get_can_support_params(self) -> list[str]:
        """The slow CLASS inputs, under their CLASS names and Cobaya's renames."""
        renamed = [
            name for name, target in self.classnet.renames.items() if target in SLOW_PARAMETERS
        ]
        return [*SLOW_PARAMETERS, *renamed]

    def get_allow_agnostic(self) -> bool:
        return False

    def get_can_provide(self) -> list[str]:
        return [TRANSFERS_PRODUCT]

    def get_classnet_transfers(self) -> tuple[dict[str, Any], HookedClass]:
        """(The parameters of the current state, the CLASS object holding its sources)."""
        return self.current_state[TRANSFERS_PRODUCT]

    def calculate(self, state: dict, want_derived: bool = True, **params_values_dict) -> bool:
        """Compute the whole point on a free CLASS object."""
        cosmo = self._free_object()
        settings = {self.classnet.translate_param(p): v for p, v in params_values_dict.items()}
        # ClassNet's own parameters at this point (Cobaya sets every input first).
        current = self.provider.params
        own = {
            self.classnet.translate_param(p): current[p]
            for p in self.classnet.input_params
            if p in current
        }
        cosmo.set({**settings, **self.classnet.extra_args, **own})
        if not self.classnet.compute_slow_part(cosmo):
            return False
        state[TRANSFERS_PRODUCT] = (dict(params_values_dict), cosmo)
        return True

    def _free_object(self) -> HookedClass:
        """A pooled CLASS object that no cached state of this helper refers to."""
        in_use = {
            id(cached[TRANSFERS_PRODUCT][1])
            for cached in self._states
            if cached.get(TRANSFERS_PRODUCT) is not None
        }
        for cosmo in self._pool:
            if id(cosmo) not in in_use:
                return cosmo
        cosmo = self.classnet.new_class_object()
        self._pool.append(cosmo)
        return cosmo

    def close(self) -> None:
        """Free the CLASS memory of every pooled object."""
        for cosmo in self._pool:
            cosmo.struct_cleanup()
        self._pool.clear()
