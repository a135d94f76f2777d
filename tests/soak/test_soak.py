"""The bounded soak of bench/soak.py as a test: 16 clients mixing storefront reads, media GETs,
uploads and syncs against the real server on loopback, with zero 5xx responses, zero failed
requests, the server's memory at the end within 20 % of where it was after the warm-up, and
its files consistent once stopped. Minutes long, so it runs only with MEDIA_GATEWAY_SOAK=1
(``MEDIA_GATEWAY_SOAK_SECONDS`` sets the measured duration, 60 by default)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak import MEMORY_TOLERANCE, soak

pytestmark = [
    pytest.mark.soak,
    pytest.mark.skipif(
        os.environ.get("MEDIA_GATEWAY_SOAK") != "1", reason="set MEDIA_GATEWAY_SOAK=1 to soak"
    ),
]


def test_soak(tmp_path: Path) -> None:
    seconds = float(os.environ.get("MEDIA_GATEWAY_SOAK_SECONDS", "60"))
    report = soak(duration=seconds, warmup=15.0, clients=16, folder=tmp_path)
    summary = "\n".join(report.lines())
    print(summary)
    assert report.server_errors == 0, summary
    assert report.failures == [], summary
    assert {"read", "media", "upload", "sync"} <= set(report.counts), summary
    assert abs(report.memory_change) <= MEMORY_TOLERANCE, summary
    assert report.file_problems == [], summary
    assert report.passed
