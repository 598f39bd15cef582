"""unlite: a small NFV node for OpenWrt gateways running Native Network Functions.

Layout: ``model`` (NF-FG parsing), ``compute`` (native NNF driver, packages), ``network``
(steering backends), ``node`` (deploy/update/delete as transactions), ``store`` (desired and
runtime state), ``api`` (REST), ``cli`` (command line), ``sh`` (every external command).
"""
import os
import sys

__version__ = "0.1.0"


# glibc malloc for a long-running Python daemon: one arena (not one per thread that allocates
# while another does); allocations of 16 KiB or more mapped on their own and returned whole
# when freed, instead of a threshold that rises with every large block freed; and no
# per-thread cache of freed blocks (tcache), which kept what one server thread freed from
# the others and left the heap in pieces: `make soak` ended 0.5-0.6 MB lower without it,
# at the same request rate and latencies
MALLOC_TUNABLES = ("glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=16384:"
                   "glibc.malloc.trim_threshold=16384:glibc.malloc.tcache_count=0")


def tune_malloc():
    """Make ``unlite serve`` run with ``MALLOC_TUNABLES``.

    With glibc's defaults the daemon's RSS grew by 3-5 MB under concurrent requests and
    never came back: arenas of their own for threads that allocate at the same time (up to
    8 per CPU), each keeping what it once held, and large temporary blocks kept in the heap
    once a larger one was freed, pinning what lies above them. glibc reads its tunables only
    when a process starts, so this re-executes the process (same pid) with
    ``GLIBC_TUNABLES`` set, once. It does nothing on musl (OpenWrt's C library, which has
    neither) or when ``GLIBC_TUNABLES`` or ``MALLOC_ARENA_MAX`` is set already. It lives
    here, not in ``cli``, so that ``python -m unlite serve`` re-executes before importing
    anything."""
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError):
        glibc = False
    if not glibc or not getattr(sys, "orig_argv", None) \
            or {"GLIBC_TUNABLES", "MALLOC_ARENA_MAX"} & set(os.environ):
        return
    os.environ["GLIBC_TUNABLES"] = MALLOC_TUNABLES
    try:
        os.execv(sys.executable, sys.orig_argv)
    except OSError:                             # run on, with glibc's defaults
        del os.environ["GLIBC_TUNABLES"]
