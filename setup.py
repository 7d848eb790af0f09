"""Build catzilla's Cython extensions.

catzilla._core calls libuv through our own declarations (catzilla/includes/catzilla_uv.h) and is
linked at run time against the libuv inside uvloop (see catzilla/_uvlink.py), so the build needs
no libuv source or headers. vendor/libuv/PIN records the release those declarations follow.
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("CATZILLA_DEBUG_BUILD") == "1"
cflags = ["-O0", "-g"] if debug else ["-O2"]

extensions = [
    Extension(
        "catzilla._core",
        ["catzilla/_core.pyx"],
        include_dirs=["catzilla"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
    ),
    Extension(
        "catzilla._router",
        ["catzilla/_router.pyx"],
        extra_compile_args=cflags,
    ),
    Extension(
        "catzilla._sse",
        ["catzilla/_sse.pyx"],
        extra_compile_args=cflags,
    ),
    Extension(
        "catzilla._dl",
        ["catzilla/_dl.pyx"],
        extra_compile_args=cflags,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=False,
    ),
)
