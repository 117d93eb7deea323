"""Build the Cython extensions of stepsound.

Every ``stepsound/**/*.pyx`` becomes an extension module (``stepsound/detect/_core.pyx``
is ``stepsound.detect._core``).  Bounds checking and
wraparound are off in a release build; set ``STEPSOUND_DEBUG=1`` in the
environment to build with bounds checks, wraparound checks and assertions on
(the debug test run in CI does this).
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("STEPSOUND_DEBUG", "") not in ("", "0")

directives = {
    "language_level": "3",
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

extra_compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        os.path.splitext(path)[0].replace(os.sep, "."),
        [path],
        include_dirs=[numpy.get_include()],
        extra_compile_args=extra_compile_args,
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(glob.glob(os.path.join("stepsound", "**", "*.pyx"), recursive=True))
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
