"""Build catzilla's Cython extensions.

catzilla._core calls libuv through our own declarations (catzilla/includes/catzilla_uv.h) and is
linked at run time against the libuv inside uvloop (see catzilla/_uvlink.py), so the build needs
no libuv source or headers. vendor/libuv/PIN records the release those declarations follow.
"""

import hashlib
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

debug = os.environ.get("CATZILLA_DEBUG_BUILD") == "1"
# CATZILLA_SANITIZE=1: AddressSanitizer + UBSan build for `tox -e asan` (see README, Development).
# Such an extension links libasan dynamically and runs only with the ASan runtime preloaded.
sanitize = os.environ.get("CATZILLA_SANITIZE") == "1"
cflags = ["-O0", "-g"] if debug else ["-O2"]
ldflags = []
options = {}
if sanitize:
    san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    # CPython's CFLAGS hold -fwrapv, under which a signed overflow wraps by definition and UBSan
    # has nothing to report; an overflow in our arithmetic is a bug all the same
    cflags = san + ["-fno-wrapv", "-g", "-O1"]
    ldflags = san
    # its own build directory, named by the flags: setuptools reuses an object newer than its
    # source whatever flags built it, so a plain build, a sanitized one and one with other
    # flags must not share one
    digest = hashlib.sha1(" ".join(cflags + ldflags).encode()).hexdigest()[:10]
    options = {"build": {"build_base": "build/sanitize-" + digest}}

extensions = [
    Extension(
        "catzilla._core",
        ["catzilla/_core.pyx"],
        include_dirs=["catzilla"],
        extra_compile_args=cflags + ["-Wno-unused-function"],
        extra_link_args=ldflags,
    ),
    Extension(
        "catzilla._router",
        ["catzilla/_router.pyx"],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    ),
    Extension(
        "catzilla._sse",
        ["catzilla/_sse.pyx"],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    ),
    Extension(
        "catzilla._dl",
        ["catzilla/_dl.pyx"],
        extra_compile_args=cflags,
        extra_link_args=ldflags,
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={"language_level": "3", "embedsignature": True},
        annotate=False,
    ),
    options=options,
)
