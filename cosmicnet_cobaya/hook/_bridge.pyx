# cython: language_level=3, boundscheck=False, wraparound=False
# (wraparound=False: no negative indices anywhere in this file, lists included)
"""C-level bridge into a live ``classy.Class`` object (classy 3.4.1.0).

Only the fields and CLASS functions used here are declared; the C compiler sees
the real structs through ``class.h``.  Never import this module directly: use
:mod:`cosmicnet_cobaya.hook.bridge`, which makes CLASS's symbols visible first
and verifies the mirrored layout.
"""

import classy
import numpy as np

cimport numpy as cnp
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy

cnp.import_array()


cdef extern from "classy_mirror.h":
    ctypedef char ErrorMsg[2048]

    cdef struct precision:
        double a_ini_over_a_today_default

    cdef struct background:
        double h
        double conformal_age
        int bt_size
        short is_allocated
        ErrorMsg error_message

    cdef struct thermodynamics:
        int tt_size
        double z_rec
        double tau_reio
        double tau_rec
        short is_allocated
        ErrorMsg error_message

    cdef struct perturbations:
        short has_perturbations
        short has_cmb
        short has_scalars
        short has_ad
        short has_matter_source_in_current_gauge
        short has_cl_cmb_temperature
        short has_cl_cmb_polarization
        short has_cl_cmb_lensing_potential
        short has_cl_lensing_potential
        short has_cl_number_count
        double z_max_pk
        int md_size
        int index_md_scalars
        int * ic_size
        int index_ic_ad
        int * tp_size
        int * k_size_cmb
        int * k_size_cl
        int * k_size
        double ** k
        double k_min
        double k_max
        double * tau_sampling
        int tau_size
        int ln_tau_size
        double * ln_tau
        double *** sources
        double *** late_sources
        double *** ddlate_sources
        short is_allocated
        ErrorMsg error_message
        short has_source_t
        short has_source_p
        short has_source_phi
        short has_source_phi_plus_psi
        short has_source_phi_prime
        short has_source_psi
        short has_source_delta_m
        short has_source_delta_cb
        short has_source_delta_tot
        short has_source_delta_g
        short has_source_delta_b
        short has_source_delta_cdm
        short has_source_delta_ur
        short has_source_theta_m
        short has_source_theta_cb
        short has_source_theta_tot
        short has_source_theta_b
        short has_source_theta_cdm
        short has_source_h
        short has_source_h_prime
        short has_source_eta
        short has_source_eta_prime
        int index_tp_t0
        int index_tp_t1
        int index_tp_t2
        int index_tp_p
        int index_tp_phi
        int index_tp_phi_plus_psi
        int index_tp_phi_prime
        int index_tp_psi
        int index_tp_delta_m
        int index_tp_delta_cb
        int index_tp_delta_tot
        int index_tp_delta_g
        int index_tp_delta_b
        int index_tp_delta_cdm
        int index_tp_delta_ur
        int index_tp_theta_m
        int index_tp_theta_cb
        int index_tp_theta_tot
        int index_tp_theta_b
        int index_tp_theta_cdm
        int index_tp_h
        int index_tp_h_prime
        int index_tp_eta
        int index_tp_eta_prime

    cdef struct primordial:
        short is_allocated
        ErrorMsg error_message

    cdef enum non_linear_method:
        nl_none
        nl_halofit
        nl_HMcode

    cdef struct fourier:
        non_linear_method method
        short has_pk_eq
        int pk_size
        int k_size
        double * k
        int index_pk_m
        int tau_size
        double * tau
        double ** nl_corr_density
        double ** k_nl
        int index_tau_min_nl
        short is_allocated
        ErrorMsg error_message

    cdef struct transfer:
        int md_size
        int * tt_size
        int * l_size
        int ** l_size_tt
        size_t q_size
        double * q
        size_t q_size_limber
        double * q_limber
        double ** transfer
        double ** transfer_limber
        short do_lcmb_full_limber
        int index_tt_lcmb
        short is_allocated
        ErrorMsg error_message

    cdef struct harmonic:
        short is_allocated
        ErrorMsg error_message

    cdef struct output:
        ErrorMsg error_message

    cdef struct lensing:
        short is_allocated
        ErrorMsg error_message

    cdef struct distortions:
        short is_allocated
        ErrorMsg error_message

    cdef struct file_content:
        int size

    ctypedef struct classy_mirror:
        precision pr
        background ba
        thermodynamics th
        perturbations pt
        primordial pm
        fourier fo
        transfer tr
        harmonic hr
        output op
        lensing le
        distortions sd
        file_content fc
        int computed
        int allocated
        void * _pars
        void * ncp

    int _SUCCESS_
    int _MAXTITLESTRINGLENGTH_
    int _FAILURE_
    int _TRUE_
    int _FALSE_
    short _SPLINE_EST_DERIV_

    int background_output_titles(background *, char *)
    int background_output_data(background *, int, double *)
    int thermodynamics_output_titles(background *, thermodynamics *, char *)
    int thermodynamics_output_data(background *, thermodynamics *, int, double *)
    int perturbations_indices(precision *, background *, thermodynamics *, perturbations *)
    int perturbations_timesampling_for_sources(
        precision *, background *, thermodynamics *, perturbations *)
    int perturbations_prepare_k_output(background *, perturbations *)
    int array_spline_table_lines(
        double * x, int x_size, double * y_array, int y_size, double * ddy_array,
        short spline_mode, char * errmsg)
    int primordial_init(precision *, perturbations *, primordial *)
    int fourier_init(precision *, background *, thermodynamics *, perturbations *,
                     primordial *, fourier *)
    int fourier_free(fourier *)
    int primordial_free(primordial *)
    int transfer_free(transfer *)
    int harmonic_free(harmonic *)
    int lensing_free(lensing *)
    int distortions_free(distortions *)
    int transfer_init(precision *, background *, thermodynamics *, perturbations *,
                      fourier *, transfer *)
    int harmonic_init(precision *, background *, perturbations *, primordial *,
                      fourier *, transfer *, harmonic *)
    int lensing_init(precision *, perturbations *, harmonic *, fourier *, lensing *)
    int distortions_init(precision *, background *, thermodynamics *, perturbations *,
                         primordial *, distortions *)


class HookError(RuntimeError):
    """A CLASS call made by the bridge failed; the message is CLASS's own."""


class UnsupportedOutputError(HookError):
    """The requested CLASS output needs sources the bridge cannot install."""


cdef classy_mirror * _mirror(object cosmo) except NULL:
    if not isinstance(cosmo, classy.Class):
        raise TypeError(
            "the bridge works on classy.Class objects, got %s (for a HookedClass, "
            "pass its .cosmo)" % type(cosmo).__name__)
    return <classy_mirror *> <void *> cosmo


def layout_probe(object cosmo):
    """Values read through the mirror, to be compared with classy's own getters."""
    cdef classy_mirror * m = _mirror(cosmo)
    return {
        "h": m.ba.h,
        "conformal_age": m.ba.conformal_age,
        "tau_reio": m.th.tau_reio,
        "z_rec": m.th.z_rec,
        "computed": m.computed,
        "allocated": m.allocated,
        "pars_is_same": (<object> m._pars) is cosmo.pars,
        "ncp": set(<object> m.ncp),
        "thermodynamics_allocated": m.th.is_allocated,
        "perturbations_allocated": m.pt.is_allocated,
    }


cdef list _source_table(perturbations * pt):
    """(name, index_tp) of every scalar source type CLASS will need."""
    cdef list table = []
    if pt.has_source_t:
        table += [("t0", pt.index_tp_t0), ("t1", pt.index_tp_t1), ("t2", pt.index_tp_t2)]
    entries = (
        ("p", pt.has_source_p, pt.index_tp_p),
        ("phi", pt.has_source_phi, pt.index_tp_phi),
        ("phi_plus_psi", pt.has_source_phi_plus_psi, pt.index_tp_phi_plus_psi),
        ("phi_prime", pt.has_source_phi_prime, pt.index_tp_phi_prime),
        ("psi", pt.has_source_psi, pt.index_tp_psi),
        ("delta_m", pt.has_source_delta_m, pt.index_tp_delta_m),
        ("delta_cb", pt.has_source_delta_cb, pt.index_tp_delta_cb),
        ("delta_tot", pt.has_source_delta_tot, pt.index_tp_delta_tot),
        ("delta_g", pt.has_source_delta_g, pt.index_tp_delta_g),
        ("delta_b", pt.has_source_delta_b, pt.index_tp_delta_b),
        ("delta_cdm", pt.has_source_delta_cdm, pt.index_tp_delta_cdm),
        ("delta_ur", pt.has_source_delta_ur, pt.index_tp_delta_ur),
        ("theta_m", pt.has_source_theta_m, pt.index_tp_theta_m),
        ("theta_cb", pt.has_source_theta_cb, pt.index_tp_theta_cb),
        ("theta_tot", pt.has_source_theta_tot, pt.index_tp_theta_tot),
        ("theta_b", pt.has_source_theta_b, pt.index_tp_theta_b),
        ("theta_cdm", pt.has_source_theta_cdm, pt.index_tp_theta_cdm),
        ("h", pt.has_source_h, pt.index_tp_h),
        ("h_prime", pt.has_source_h_prime, pt.index_tp_h_prime),
        ("eta", pt.has_source_eta, pt.index_tp_eta),
        ("eta_prime", pt.has_source_eta_prime, pt.index_tp_eta_prime),
    )
    for name, flag, index in entries:
        if flag:
            table.append((name, index))
    return table


def _check_scalar_adiabatic(object cosmo):
    cdef perturbations * pt = &_mirror(cosmo).pt
    if pt.md_size != 1 or not pt.has_scalars or pt.ic_size[pt.index_md_scalars] != 1 \
            or not pt.has_ad:
        raise UnsupportedOutputError(
            "only scalar modes with adiabatic initial conditions can take external "
            "sources: remove tensor/vector modes and isocurvature initial conditions")
    table = _source_table(pt)
    if len(table) != pt.tp_size[pt.index_md_scalars]:
        raise UnsupportedOutputError(
            "the requested output needs %d source types, of which the bridge knows %d "
            "(%s); reduce 'output' to CMB and matter spectra"
            % (pt.tp_size[pt.index_md_scalars], len(table), [n for n, _ in table]))
    return table


def prepare_perturbations(object cosmo):
    """Prepare the perturbation structure exactly as CLASS would, without ODEs.

    The object must have been computed up to thermodynamics.  Returns a dict with
    the tau sampling, the k list and the names of the sources CLASS needs.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    if not m.computed or not m.th.is_allocated or pt.is_allocated:
        raise HookError("prepare_perturbations needs an object computed up to "
                        "thermodynamics and no perturbations yet")
    if not pt.has_perturbations:
        raise HookError("the requested output needs no perturbations")
    if perturbations_indices(&m.pr, &m.ba, &m.th, pt) == _FAILURE_:
        raise HookError(pt.error_message.decode(errors="replace"))
    # From here on, CLASS's perturbations_free can release what was allocated.
    pt.is_allocated = _TRUE_
    if pt.z_max_pk > m.th.z_rec and (
            pt.has_cmb or (pt.has_source_delta_m and not pt.has_matter_source_in_current_gauge)):
        raise HookError("z_max_pk=%g is above z_rec=%g" % (pt.z_max_pk, m.th.z_rec))
    if perturbations_timesampling_for_sources(&m.pr, &m.ba, &m.th, pt) == _FAILURE_:
        raise HookError(pt.error_message.decode(errors="replace"))
    if perturbations_prepare_k_output(&m.ba, pt) == _FAILURE_:
        raise HookError(pt.error_message.decode(errors="replace"))
    table = _check_scalar_adiabatic(cosmo)
    cdef int md = pt.index_md_scalars
    cdef int k_size = pt.k_size[md]
    cdef int k_size_cl = pt.k_size_cl[md]
    k = np.empty(k_size)
    tau = np.empty(pt.tau_size)
    cdef double[::1] k_view = k
    cdef double[::1] tau_view = tau
    memcpy(&k_view[0], pt.k[md], k_size * sizeof(double))
    memcpy(&tau_view[0], pt.tau_sampling, pt.tau_size * sizeof(double))
    return {
        "k": k,
        "tau": tau,
        "k_min": pt.k_min,
        "k_max": pt.k_max,
        "k_size_cl": k_size_cl,
        "k_size_cmb": pt.k_size_cmb[md],
        "k_max_cl": pt.k[md][k_size_cl - 1],
        "source_names": tuple(name for name, _ in table),
        "ln_tau_size": pt.ln_tau_size,
    }


def read_sources(object cosmo):
    """Copy the k list, tau sampling and every scalar adiabatic source (tau, k)."""
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    if not pt.is_allocated:
        raise HookError("read_sources needs an object computed up to perturbations")
    table = _check_scalar_adiabatic(cosmo)
    cdef int md = pt.index_md_scalars
    cdef int ic = pt.index_ic_ad
    cdef int tp_size = pt.tp_size[md]
    cdef int k_size = pt.k_size[md]
    cdef int tau_size = pt.tau_size
    cdef double[:, ::1] view
    result = {}
    for name, index_tp in table:
        array = np.empty((tau_size, k_size))
        view = array
        memcpy(&view[0, 0], pt.sources[md][ic * tp_size + index_tp],
               tau_size * k_size * sizeof(double))
        result[name] = array
    k = np.empty(k_size)
    tau = np.empty(tau_size)
    cdef double[::1] k_view = k
    cdef double[::1] tau_view = tau
    memcpy(&k_view[0], pt.k[md], k_size * sizeof(double))
    memcpy(&tau_view[0], pt.tau_sampling, tau_size * sizeof(double))
    return k, tau, result


def install_sources(object cosmo, dict sources):
    """Copy sources (name -> C-contiguous float64 (tau_size, k_size)) into CLASS.

    Every source named by prepare_perturbations must be given, on CLASS's own k
    list and tau sampling; the late-time ln(tau) splines are computed here.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    if not pt.is_allocated:
        raise HookError("install_sources needs prepare_perturbations first")
    table = _check_scalar_adiabatic(cosmo)
    cdef int md = pt.index_md_scalars
    cdef int ic = pt.index_ic_ad
    cdef int tp_size = pt.tp_size[md]
    cdef int k_size = pt.k_size[md]
    cdef int tau_size = pt.tau_size
    cdef const double[:, ::1] view
    cdef int index_tp
    missing = [name for name, _ in table if name not in sources]
    if missing:
        raise HookError("sources missing for %s" % missing)
    for name, index_tp in table:
        view = sources[name]
        if view.shape[0] != tau_size or view.shape[1] != k_size:
            raise HookError("source %s has shape (%d, %d), CLASS needs (%d, %d)"
                            % (name, view.shape[0], view.shape[1], tau_size, k_size))
        memcpy(pt.sources[md][ic * tp_size + index_tp], &view[0, 0],
               tau_size * k_size * sizeof(double))
    if pt.ln_tau_size > 1:
        for _, index_tp in table:
            if array_spline_table_lines(
                    pt.ln_tau, pt.ln_tau_size,
                    pt.late_sources[md][ic * tp_size + index_tp], k_size,
                    pt.ddlate_sources[md][ic * tp_size + index_tp],
                    _SPLINE_EST_DERIV_, pt.error_message) == _FAILURE_:
                raise HookError(pt.error_message.decode(errors="replace"))


DOWNSTREAM_MODULES = ("primordial", "fourier", "transfer", "harmonic", "lensing",
                      "distortions")


def run_module(object cosmo, str name):
    """Run one downstream CLASS module on the object; raise HookError on failure."""
    cdef classy_mirror * m = _mirror(cosmo)
    cdef int status
    cdef char * message
    if name == "primordial":
        status = primordial_init(&m.pr, &m.pt, &m.pm)
        message = &m.pm.error_message[0]
    elif name == "fourier":
        status = fourier_init(&m.pr, &m.ba, &m.th, &m.pt, &m.pm, &m.fo)
        message = &m.fo.error_message[0]
    elif name == "transfer":
        status = transfer_init(&m.pr, &m.ba, &m.th, &m.pt, &m.fo, &m.tr)
        message = &m.tr.error_message[0]
    elif name == "harmonic":
        status = harmonic_init(&m.pr, &m.ba, &m.pt, &m.pm, &m.fo, &m.tr, &m.hr)
        message = &m.hr.error_message[0]
    elif name == "lensing":
        status = lensing_init(&m.pr, &m.pt, &m.hr, &m.fo, &m.le)
        message = &m.le.error_message[0]
    elif name == "distortions":
        status = distortions_init(&m.pr, &m.ba, &m.th, &m.pt, &m.pm, &m.sd)
        message = &m.sd.error_message[0]
    else:
        raise ValueError("unknown CLASS module %r" % name)
    if status == _FAILURE_:
        raise HookError(message.decode(errors="replace"))


BOUNDARY_WINDOW = 3
"""Rows tried at a time when the first guess of HMcode's boundary missed it."""


def hmcode_times(int tau_size, int late_size, int stride):
    """Rows of the source time sampling at which the sparse fourier step runs HMcode.

    Every ``stride``-th row counted back from today, and every late row (the
    output redshifts z <= z_max_pk, where P_nl(k, z) is returned to users).
    """
    if stride < 1:
        raise ValueError("stride must be at least 1, got %d" % stride)
    first_late = tau_size - max(late_size, 1)
    return sorted(set(range(tau_size - 1, -1, -stride)) | set(range(first_late, tau_size)))


def sparse_fourier_applies(object cosmo, int stride):
    """True when the fourier step would run HMcode on sparse times (see run_fourier_sparse).

    Only where CLASS computes the correction before the output redshifts: for
    lensing (otherwise it runs on the output redshifts alone, and the earlier
    rows of its table are never written).
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    lensing = pt.has_cl_cmb_lensing_potential or pt.has_cl_lensing_potential \
        or pt.has_cl_number_count
    return stride > 1 and m.fo.method == nl_HMcode and not m.fo.has_pk_eq \
        and pt.has_scalars and pt.is_allocated and lensing


cdef double ** _matter_source_view(perturbations * pt, list rows) except NULL:
    """Copies of the matter sources (delta_m, delta_cb) on the given time rows."""
    cdef int md = pt.index_md_scalars
    cdef int k_size = pt.k_size[md]
    cdef int count = pt.ic_size[md] * pt.tp_size[md]
    cdef int offset = pt.index_ic_ad * pt.tp_size[md]
    cdef double ** view = <double **> calloc(count, sizeof(double *))
    cdef int index, j, row
    if view == NULL:
        raise MemoryError()
    for flag, index_tp in ((pt.has_source_delta_m, pt.index_tp_delta_m),
                           (pt.has_source_delta_cb, pt.index_tp_delta_cb)):
        if not flag:
            continue
        index = offset + index_tp
        view[index] = <double *> malloc(len(rows) * k_size * sizeof(double))
        if view[index] == NULL:
            _free_view(view, count)
            raise MemoryError()
        for j, row in enumerate(rows):
            memcpy(view[index] + j * k_size, pt.sources[md][index] + row * k_size,
                   k_size * sizeof(double))
    return view


cdef void _free_view(double ** view, int count):
    for index in range(count):
        free(view[index])
    free(view)


cdef int _fourier_on_rows(classy_mirror * m, fourier * fo, list rows, int late_size) except -1:
    """CLASS's fourier_init on a view of the perturbations restricted to ``rows``."""
    cdef perturbations * pt = &m.pt
    cdef int md = pt.index_md_scalars
    cdef perturbations view = pt[0]
    cdef double * view_tau = <double *> malloc(len(rows) * sizeof(double))
    cdef double *** view_sources = <double ***> malloc(pt.md_size * sizeof(double **))
    cdef double ** matter = NULL
    cdef int j, status = _FAILURE_
    if view_tau == NULL or view_sources == NULL:
        free(view_tau)
        free(view_sources)
        raise MemoryError()
    try:
        matter = _matter_source_view(pt, rows)
        for j in range(pt.md_size):
            view_sources[j] = pt.sources[j]
        view_sources[md] = matter
        for j, row in enumerate(rows):
            view_tau[j] = pt.tau_sampling[row]
        view.tau_size = len(rows)
        view.tau_sampling = view_tau
        view.sources = view_sources
        view.ln_tau_size = late_size
        status = fourier_init(&m.pr, &m.ba, &m.th, &view, &m.pm, fo)
    finally:
        if matter != NULL:
            _free_view(matter, pt.ic_size[md] * pt.tp_size[md])
        free(view_sources)
        free(view_tau)
    if status == _FAILURE_:
        raise HookError(fo.error_message.decode(errors="replace"))
    return 0


cdef dict _computed_corrections(fourier * fo, list rows):
    """{row: (correction of each P(k) type, k_nl of each)} where HMcode succeeded."""
    cdef int n_rows = len(rows)
    cdef int pk
    corrections = [np.asarray(<double[:n_rows * fo.k_size]> fo.nl_corr_density[pk]).reshape(
        n_rows, fo.k_size).copy() for pk in range(fo.pk_size)]
    k_nl = [np.asarray(<double[:n_rows]> fo.k_nl[pk]).copy() for pk in range(fo.pk_size)]
    # HMcode stores exactly 1 at every k where it gave up (k_nl beyond the k range).
    done = np.any(corrections[fo.index_pk_m] != 1.0, axis=1)
    return {row: ([c[j] for c in corrections], [k[j] for k in k_nl])
            for j, row in enumerate(rows) if done[j]}


def run_fourier_sparse(object cosmo, int stride):
    """CLASS's fourier step with HMcode run on every ``stride``-th source time.

    CLASS's own ``fourier_init`` runs on a view of the perturbation structure
    whose time sampling keeps every late row (the output redshifts, so the
    linear and non-linear P(k, z) that users get are CLASS's own) and every
    ``stride``-th earlier row.  HMcode gives up at the redshift where its
    non-linear scale leaves the k range; a second view over the rows just
    before that point finds it exactly.  The correction sqrt(P_nl / P_lin)
    that the transfer step multiplies into the lensing potential is splined
    in ln(tau) between the computed rows.  Returns the rows HMcode ran at.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    cdef fourier pristine = m.fo
    cdef fourier scratch
    rows = hmcode_times(pt.tau_size, pt.ln_tau_size, stride)
    _fourier_on_rows(m, &m.fo, rows, pt.ln_tau_size)
    computed = _computed_corrections(&m.fo, rows)
    ran = set(rows)
    k_max = m.fo.k[m.fo.k_size - 1]
    gap = _boundary_rows(computed, stride, np.log(np.asarray(<double[:pt.tau_size]>
                                                             pt.tau_sampling)), k_max)
    earliest = min(computed, default=0)
    while gap:
        # The view ends on a row known to be computable: HMcode starts from the last
        # row, and CLASS cannot handle giving up on its very first one.
        view = [*gap, earliest]
        scratch = pristine
        _fourier_on_rows(m, &scratch, view, 1)
        found = _computed_corrections(&scratch, view)
        fourier_free(&scratch)
        found.pop(earliest, None)
        computed.update(found)
        ran.update(gap)
        if len(found) == len(gap):  # all computable: the boundary lies lower
            gap = list(range(max(gap[0] - BOUNDARY_WINDOW, 0), gap[0]))
        elif not found:  # none computable: it lies higher
            gap = list(range(max(gap) + 1, min(max(gap) + 1 + BOUNDARY_WINDOW, earliest)))
        else:
            gap = []
        gap = [row for row in gap if row not in ran]
    _fill_corrections(&m.fo, pt.tau_sampling, pt.tau_size, computed)
    return sorted(ran)


def _boundary_rows(dict computed, int stride, ln_tau, double k_max):
    """Rows to compute where HMcode gave up between two sparse rows.

    The earliest rows of the sparse pass give k_nl(tau); extrapolated in
    ln(tau), it passes k_max at the row where HMcode gives up.  The rows from
    one before that one to one after are returned (those CLASS would compute
    there are then exact; the others between sparse rows are splined).
    """
    if not computed:
        return []
    earliest = min(computed)
    gap = [row for row in range(earliest - stride + 1, earliest) if row >= 0]
    if len(computed) < 3 or not gap:
        return gap
    first = sorted(computed)[:3]
    k_nl = [max(computed[row][1]) for row in first]  # the larger of P_m's and P_cb's
    # k_nl grows faster than exponentially in ln(tau) going back: a parabola through
    # the three earliest rows follows that curvature.
    fit = np.polyfit(ln_tau[first], np.log(k_nl), 2)
    reachable = [row for row in gap if np.polyval(fit, ln_tau[row]) <= np.log(k_max)]
    boundary = reachable[0] if reachable else earliest
    return [row for row in gap if boundary - 1 <= row <= boundary + 1]


cdef double * _copy_to_c(cnp.ndarray array) except NULL:
    cdef cnp.ndarray flat = np.ascontiguousarray(array, dtype=np.float64).ravel()
    cdef double * target = <double *> malloc(flat.size * sizeof(double))
    if target == NULL:
        raise MemoryError()
    memcpy(target, cnp.PyArray_DATA(flat), flat.size * sizeof(double))
    return target


cdef _fill_corrections(fourier * fo, double * tau_sampling, int tau_size, dict computed):
    """Put the corrections computed on some rows onto all ``tau_size`` times.

    Cubic spline of ln(correction) in ln(tau) between the computed rows; 1 before
    the earliest, as CLASS stores where HMcode gives up.
    """
    from scipy.interpolate import CubicSpline

    cdef int pk
    tau = np.asarray(<double[:tau_size]> tau_sampling)
    ln_tau = np.log(tau)
    rows = np.array(sorted(computed), dtype=int)
    span = np.arange(rows[0] if rows.size else tau_size, tau_size)
    new_tau = _copy_to_c(tau)
    for pk in range(fo.pk_size):
        full_corr = np.ones((tau_size, fo.k_size))
        full_k_nl = np.zeros(tau_size)
        if rows.size:
            corr = np.array([computed[row][0][pk] for row in rows])
            k_nl = np.array([computed[row][1][pk] for row in rows])
            if rows.size > 1:
                spline = CubicSpline(ln_tau[rows], np.log(corr), axis=0)
                full_corr[span] = np.exp(spline(ln_tau[span]))
                full_k_nl[span] = np.interp(ln_tau[span], ln_tau[rows], k_nl)
            full_corr[rows] = corr
            full_k_nl[rows] = k_nl
        free(fo.nl_corr_density[pk])
        fo.nl_corr_density[pk] = _copy_to_c(full_corr)
        free(fo.k_nl[pk])
        fo.k_nl[pk] = _copy_to_c(full_k_nl)
    free(fo.tau)
    fo.tau = new_tau
    fo.tau_size = tau_size
    fo.index_tau_min_nl = span[0] if span.size else tau_size - 1


def read_nl_corrections(object cosmo):
    """Copy of sqrt(P_nl / P_lin) of total matter on (tau sampling, k list), and tau."""
    cdef classy_mirror * m = _mirror(cosmo)
    cdef fourier * fo = &m.fo
    if not fo.is_allocated or fo.method == nl_none:
        raise HookError("read_nl_corrections needs a non-linear fourier step computed")
    corr = np.asarray(<double[:fo.tau_size * fo.k_size]> fo.nl_corr_density[fo.index_pk_m])
    tau = np.asarray(<double[:fo.tau_size]> fo.tau)
    return corr.reshape(fo.tau_size, fo.k_size).copy(), tau.copy(), fo.index_tau_min_nl


def allocated_modules(object cosmo):
    """Names of the CLASS modules whose structures the object holds."""
    cdef classy_mirror * m = _mirror(cosmo)
    flags = (("background", m.ba.is_allocated), ("thermodynamics", m.th.is_allocated),
             ("perturbations", m.pt.is_allocated), ("primordial", m.pm.is_allocated),
             ("fourier", m.fo.is_allocated), ("transfer", m.tr.is_allocated),
             ("harmonic", m.hr.is_allocated), ("lensing", m.le.is_allocated),
             ("distortions", m.sd.is_allocated))
    return {name for name, flag in flags if m.allocated and flag}


def free_after_perturbations(object cosmo, bint keep_transfer):
    """Free every module after perturbations (but the transfer one if kept).

    The object keeps its background, thermodynamics and sources; the freed
    modules can then be run again with new primordial parameters.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    if m.sd.is_allocated:
        distortions_free(&m.sd)
    if m.le.is_allocated:
        lensing_free(&m.le)
    if m.hr.is_allocated:
        harmonic_free(&m.hr)
    if m.tr.is_allocated and not keep_transfer:
        transfer_free(&m.tr)
    if m.fo.is_allocated:
        fourier_free(&m.fo)
    if m.pm.is_allocated:
        primordial_free(&m.pm)
    m.computed = 0


def refresh_lensing_transfers(object cosmo):
    """Recompute the CMB-lensing transfer functions alone, in place.

    With a non-linear correction, only the lensing-potential transfer functions
    depend on the primordial spectrum.  CLASS's transfer_init runs on a scratch
    structure with the temperature and polarization outputs switched off; its
    lensing tables replace those held, provided both used the same q and l
    sampling.  Returns False (nothing changed) where they differ.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef perturbations * pt = &m.pt
    cdef transfer * tr = &m.tr
    cdef transfer scratch = tr[0]
    cdef short temperature = pt.has_cl_cmb_temperature
    cdef short polarization = pt.has_cl_cmb_polarization
    cdef int status
    if not tr.is_allocated or tr.md_size != 1 or not pt.has_cl_cmb_lensing_potential \
            or pt.has_cl_lensing_potential or pt.has_cl_number_count:
        return False
    pt.has_cl_cmb_temperature = _FALSE_
    pt.has_cl_cmb_polarization = _FALSE_
    try:
        status = transfer_init(&m.pr, &m.ba, &m.th, pt, &m.fo, &scratch)
    finally:
        pt.has_cl_cmb_temperature = temperature
        pt.has_cl_cmb_polarization = polarization
    if status == _FAILURE_:
        raise HookError(scratch.error_message.decode(errors="replace"))
    try:
        if not _same_sampling(tr, &scratch):
            return False
        _copy_lensing_block(tr.transfer[0], scratch.transfer[0], tr, tr.q_size)
        if tr.do_lcmb_full_limber:
            _copy_lensing_block(tr.transfer_limber[0], scratch.transfer_limber[0], tr,
                                tr.q_size_limber)
        return True
    finally:
        transfer_free(&scratch)


cdef bint _same_sampling(transfer * held, transfer * lensing):
    if lensing.tt_size[0] != 1 or lensing.l_size[0] != held.l_size[0] \
            or lensing.q_size != held.q_size \
            or lensing.do_lcmb_full_limber != held.do_lcmb_full_limber \
            or lensing.l_size_tt[0][0] != held.l_size_tt[0][held.index_tt_lcmb]:
        return False
    same_q = np.array_equal(np.asarray(<double[:held.q_size]> held.q),
                            np.asarray(<double[:lensing.q_size]> lensing.q))
    if same_q and held.do_lcmb_full_limber:
        same_q = lensing.q_size_limber == held.q_size_limber and np.array_equal(
            np.asarray(<double[:held.q_size_limber]> held.q_limber),
            np.asarray(<double[:lensing.q_size_limber]> lensing.q_limber))
    return same_q


cdef void _copy_lensing_block(double * held, double * lensing, transfer * tr, size_t q_size):
    """Copy the only type of ``lensing`` into the lensing slot of ``held`` (adiabatic ic)."""
    cdef size_t block = tr.l_size[0] * q_size
    memcpy(held + tr.index_tt_lcmb * block, lensing, block * sizeof(double))


def free_transfer(object cosmo):
    """Free the transfer structure (to be computed again)."""
    cdef classy_mirror * m = _mirror(cosmo)
    if m.tr.is_allocated:
        transfer_free(&m.tr)


def uses_non_linear(object cosmo):
    """True when CLASS's input module set a non-linear method (halofit, HMcode)."""
    return _mirror(cosmo).fo.method != nl_none


def take_primordial_input(object cosmo, object source):
    """Copy the primordial settings that CLASS's input module gave ``source``.

    ``source`` must be computed to the input level only, and ``cosmo``'s
    primordial structure freed, so that only input fields are copied.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef classy_mirror * s = _mirror(source)
    if m.pm.is_allocated or s.pm.is_allocated:
        raise HookError("take_primordial_input needs both primordial structures unallocated")
    m.pm = s.pm


def set_computed(object cosmo, set levels):
    """Mark the object as computed for these levels, as classy's compute() does."""
    cdef classy_mirror * m = _mirror(cosmo)
    ncp = <object> m.ncp
    ncp.clear()
    ncp.update(levels)
    m.computed = 1


def is_computed(object cosmo, set levels):
    """True when a full compute() for these levels would return at once."""
    cdef classy_mirror * m = _mirror(cosmo)
    return bool(m.computed) and (<object> m.ncp).issuperset(levels)


def output_table(object cosmo, str which):
    """CLASS's background or thermodynamics output table as (names, 2-d array).

    The same C functions and values as classy's ``get_background()`` and
    ``get_thermodynamics()``, without their element-by-element Python copy.
    """
    cdef classy_mirror * m = _mirror(cosmo)
    cdef char * titles = <char *> calloc(_MAXTITLESTRINGLENGTH_, sizeof(char))
    cdef double * data
    cdef int status, rows, columns
    if titles == NULL:
        raise MemoryError()
    try:
        if which == "background":
            if not m.ba.is_allocated:
                raise HookError("the background is not computed")
            status = background_output_titles(&m.ba, titles)
            rows = m.ba.bt_size
        elif which == "thermodynamics":
            if not m.th.is_allocated:
                raise HookError("the thermodynamics are not computed")
            status = thermodynamics_output_titles(&m.ba, &m.th, titles)
            rows = m.th.tt_size
        else:
            raise ValueError("which must be 'background' or 'thermodynamics'")
        if status == _FAILURE_:
            raise HookError("CLASS could not list the %s output titles" % which)
        names = (<bytes> titles).decode().split("\t")[:-1]
        columns = len(names)
        # CLASS writes the rows one after the other: the layout of a C-ordered array,
        # so it writes straight into the array (no second copy).
        table = np.empty((rows, columns))
        data = <double *> cnp.PyArray_DATA(table)
        if which == "background":
            status = background_output_data(&m.ba, columns, data)
        else:
            status = thermodynamics_output_data(&m.ba, &m.th, columns, data)
        if status == _FAILURE_:
            raise HookError("CLASS could not write the %s output table" % which)
        return names, table
    finally:
        free(titles)
