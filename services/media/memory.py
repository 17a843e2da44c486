"""Keeps the process's memory flat while large buffers stream through it.

Every chunk that passes through media (uploads, downloads, database reads) is a short-lived
buffer of a few hundred KiB, allocated and freed by many threads (gRPC's, the handlers',
pymongo's). With glibc's defaults two things inflate the process far beyond the data in flight:
each free of such a buffer raises the mmap threshold, so later ones come from the heaps, and
every thread may get a heap (arena) of its own whose free space the others cannot use. Measured
here on a 50 MB upload and download: +36–55 MiB peak with the defaults, +11–20 MiB with the
threshold pinned and two arenas.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8        # glibc mallopt parameters
M_MMAP_THRESHOLD = -3
ARENAS = 2
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value; chunks are larger


def tune_allocator() -> bool:
    """Applies the settings above; False where there is no glibc (musl, macOS): nothing changes.
    Call before the process starts its threads."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_ARENA_MAX, ARENAS))
