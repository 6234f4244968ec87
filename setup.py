"""Build of the compiled bridge into classy (metadata lives in setup.cfg).

The bridge is compiled against the headers that classy ships; classy is a
build requirement in pyproject.toml, so ``pip install .`` works in one step.
"""

import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def classy_include_dirs() -> list[str]:
    """Header folders of the installed classy (include/ and the external/ ones)."""
    try:
        import classy
    except ImportError as error:  # pragma: no cover - build-time guard
        raise SystemExit(
            f"cosmicnet_cobaya compiles against classy's headers, but `import classy` "
            f"failed ({error}): build with `pip install .` (pyproject.toml lists classy "
            "as a build requirement), or install classy==3.4.1.0 before a "
            "`--no-build-isolation` build"
        ) from error
    root = os.path.dirname(classy.__file__)
    candidates = [
        os.path.join(root, "include"),
        os.path.join(root, "external", "heating"),
        os.path.join(root, "external", "RecfastCLASS"),
        os.path.join(root, "external", "HyRec2020"),
    ]
    if not os.path.exists(os.path.join(candidates[0], "class.h")):
        raise SystemExit(f"classy at {root} ships no include/class.h")
    return [path for path in candidates if os.path.isdir(path)]


bridge = Extension(
    "cosmicnet_cobaya.hook._bridge",
    sources=["cosmicnet_cobaya/hook/_bridge.pyx"],
    include_dirs=["cosmicnet_cobaya/hook", numpy.get_include(), *classy_include_dirs()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    language="c++",
    extra_compile_args=["-std=c++11", "-Wno-unused-function"],
)

setup(ext_modules=cythonize([bridge], compiler_directives={"language_level": "3"}))
