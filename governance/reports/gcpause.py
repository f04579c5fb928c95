"""Pause Python's cyclic garbage collector while WeasyPrint works on a large document."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Layout allocates hundreds of thousands of boxes that stay alive until the PDF is
    written, and drawing allocates more; the collector's full passes over them find nothing
    to free. Measured on the 1,000-model inventory extract (benchmarks/report_inventory.py):
    a quarter of the layout's CPU, and writing the PDF/A of a freshly laid-out document took
    3.8-4.1 s with the collector running against 2.1 s paused. Reference counting still frees
    everything that is not in a cycle; the collector resumes (if it was enabled) on exit.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
