/* Mirror of the C-level layout of classy 3.4.1.0's `classy.Class` object.
 *
 * classy.Class is a Cython cdef class without cdef methods, so its instance
 * struct is PyObject_HEAD followed by its cdef fields in declaration order
 * (python/classy.pyx).  The layout is verified at run time by
 * cosmicnet_cobaya.hook.bridge before any pointer taken from it is used.
 */
#ifndef COSMICNET_CLASSY_MIRROR_H
#define COSMICNET_CLASSY_MIRROR_H

#include <Python.h>
#include "class.h"

typedef struct {
  PyObject_HEAD
  struct precision pr;
  struct background ba;
  struct thermodynamics th;
  struct perturbations pt;
  struct primordial pm;
  struct fourier fo;
  struct transfer tr;
  struct harmonic hr;
  struct output op;
  struct lensing le;
  struct distortions sd;
  struct file_content fc;
  int computed;
  int allocated;
  PyObject *_pars;
  PyObject *ncp;
  char path_to_this[1000];
} classy_mirror;

#endif
