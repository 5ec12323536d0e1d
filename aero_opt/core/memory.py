"""Process-wide memory behaviour for large tensor temporaries.

PyTorch on CPU allocates with glibc's malloc. Blocks above the mmap threshold (at most 32 MB by default) are
returned to the OS when freed and page-faulted back in on the next allocation, which for the tens-of-MB
temporaries of the surrogate's layers and of batched decoder queries costs more than the arithmetic
(``docs/architecture.md`` has the measurement). :func:`keep_freed_memory` keeps them.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed large blocks in the heap (mmap threshold 1 GiB, no trimming).

    Returns:
        True when the allocator accepted the settings (glibc), False otherwise.
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) == 1
    ok &= mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1) == 1
    ok &= mallopt(_M_TOP_PAD, 64 << 20) == 1
    return bool(ok)
