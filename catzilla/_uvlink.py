"""Make uvloop's libuv the one libuv of the process, before catzilla._core is loaded.

catzilla._core is compiled against our own libuv declarations and leaves every ``uv_*`` symbol
undefined. uvloop's ``loop`` extension carries libuv and exports those symbols; re-opening it with
RTLD_GLOBAL makes the dynamic linker resolve ``_core``'s references against it, so the HTTP core
and asyncio share one ``uv_loop_t``.
"""

from __future__ import annotations

import uvloop
import uvloop.loop as _uvloop_ext

from catzilla._dl import make_global

# The libuv release our declarations (includes/catzilla_uv.h) were written and checked against.
REQUIRED_LIBUV = (1, 52, 1)


def _version_tuple(v: int) -> tuple[int, int, int]:
    return (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF


def link() -> tuple[int, int, int]:
    runtime = _version_tuple(_uvloop_ext.libuv_get_version())
    if runtime < REQUIRED_LIBUV:
        raise ImportError(
            "catzilla needs libuv >= %d.%d.%d but uvloop %s carries libuv %d.%d.%d; "
            "upgrade uvloop (pip install -U 'uvloop>=0.23.0')"
            % (*REQUIRED_LIBUV, uvloop.__version__, *runtime)
        )
    make_global(_uvloop_ext.__file__)
    return runtime


LIBUV_VERSION = link()
