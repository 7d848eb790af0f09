"""One call of dlopen(3), so that catzilla/_uvlink.py needs no ctypes (about 0.4 MiB resident)."""

from posix.dlfcn cimport RTLD_GLOBAL, RTLD_NOW, dlerror, dlopen

import os


cdef extern from "<dlfcn.h>":
    const int RTLD_NOLOAD


def make_global(path):
    """Give the symbols of the already loaded shared object ``path`` to every library loaded
    after it (dlopen with RTLD_NOLOAD | RTLD_GLOBAL). The handle is kept for good."""
    cdef bytes name = os.fsencode(path)
    cdef const char *err
    if dlopen(name, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD) == NULL:
        err = dlerror()
        raise ImportError("cannot re-open %s with RTLD_GLOBAL: %s"
                          % (path, (<bytes>err).decode(errors="replace") if err else "not loaded"))
