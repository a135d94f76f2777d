"""How much memory image decodes may take at once, and giving it back afterwards.

A decode of N pixels holds N of a process-wide budget of pixels (``DECODES``) from before its
pixels are allocated until its work is done; a decode that would overrun the budget waits for
others to finish, so a burst of large images is decoded a few at a time while small ones
still run side by side. A decode larger than the whole budget runs alone.

Freed image memory often stays in the process: glibc keeps large freed blocks in its heaps
(its mmap threshold grows up to 32 MiB as large blocks are freed, so Pillow's 16 MiB blocks
end up in the heaps), and only ``malloc_trim`` hands such free pages back to the system. So
after a large decode's work ends, ``give_back`` trims; where the C library is not glibc it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

DEFAULT_DECODE_PIXELS: Final = 64_000_000
"""Pixels decoded at once by default: about 250 MB of RGBA, 190 MB of RGB."""

TRIM_PIXELS: Final = 4_000_000
"""Decodes of at least this many pixels give freed memory back when they end."""


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


_MALLOC_TRIM: Final = _load_malloc_trim()


def give_back() -> bool:
    """Return the C heaps' free pages to the system (glibc ``malloc_trim(0)``); False when
    nothing was returned or the C library has no such call."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False


class PixelBudget:
    """Pixels that decodes in worker threads may hold at once (see the module docstring)."""

    def __init__(self, pixels: int = DEFAULT_DECODE_PIXELS) -> None:
        self._changed = threading.Condition()
        self._in_use = 0
        self.limit = pixels

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, pixels: int) -> None:
        if pixels < 1:
            raise ValueError(f"a pixel budget is at least 1, got {pixels}")
        with self._changed:
            self._limit = pixels
            self._changed.notify_all()

    @property
    def in_use(self) -> int:
        return self._in_use

    @contextmanager
    def share(self, pixels: int) -> Iterator[None]:
        """Hold ``pixels`` of the budget (all of it when more) while the block runs; blocks
        the calling thread until they are free. A share of ``TRIM_PIXELS`` or more trims the
        heaps when it ends."""
        with self._changed:
            wanted = min(max(pixels, 0), self._limit)
            self._changed.wait_for(lambda: self._in_use + wanted <= self._limit)
            self._in_use += wanted
        try:
            yield
        finally:
            with self._changed:
                self._in_use -= wanted
                self._changed.notify_all()
            if pixels >= TRIM_PIXELS:
                give_back()


DECODES: Final = PixelBudget()
"""The budget every Pillow decode of the gateway (inspection and renditions) takes from."""
