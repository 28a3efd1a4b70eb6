"""Keep freed memory in the process for reuse, so that vectorised batches do not page-fault (glibc).

glibc serves every allocation of 128 kB or more (a per-study array of 16,000 studies) with a fresh
``mmap`` and returns it on free; its dynamic threshold then rises, but the heap is trimmed whenever its free
top exceeds twice the threshold. A batch of many analyses allocates and frees such temporaries all the time,
so their pages are faulted in again and again: ~300 page faults per ``fit_many`` of the 1,000 x 20 grid,
a third of its time. Raising both thresholds keeps that memory for the next temporary; the cost is that
up to TRIM_THRESHOLD bytes of freed memory stay with the process until it exits.

Set ``METAPSYCH_SYSTEM_MALLOC=1`` to leave the allocator alone. Other C libraries (musl, macOS, Windows)
are left alone too.
"""

from __future__ import annotations

import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD = 128 << 20
MMAP_THRESHOLD = 32 << 20  # glibc's own ceiling for its dynamic threshold


def keep_freed_memory() -> None:
    """Raise glibc's mmap and trim thresholds once per process (a no-op elsewhere or when opted out)."""
    if sys.platform != "linux" or os.environ.get("METAPSYCH_SYSTEM_MALLOC"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
