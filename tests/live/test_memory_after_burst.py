"""The real server gives back the memory of a burst of large-image work: bench/memory.py's run
(uploads of photo-like JPEG and PNG sources, then every rendition in JPEG, PNG, WEBP and AVIF
made on request, several at a time) at a smaller source size, and the server's RSS a few
seconds after the burst within a bound of where it was at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.memory import measure

pytestmark = pytest.mark.live

SIDE = 2500
"""Sources of 6 megapixels: large enough that the heaps kept about 200 MiB without trimming."""
KEPT_MIB = 100.0
"""Memory a burst may leave behind: about +50 MiB with the budget and trim, +148 without them;
the margin keeps a loaded machine's noise (+82 seen) apart from the failure."""


def test_rss_settles_near_baseline_after_a_burst_of_renditions(tmp_path: Path) -> None:
    figures = measure(tmp_path, side=SIDE, images=2, concurrency=6, settle_seconds=6.0)
    summary = "\n".join(figures.lines())
    print(summary)
    assert figures.renditions >= 40, summary
    assert figures.peak > figures.baseline + KEPT_MIB, summary  # the burst did take memory
    assert figures.kept <= KEPT_MIB, summary
