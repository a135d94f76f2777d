"""The decode pixel budget (storage/media/memory.py) with real threads: a decode that would overrun
it waits until others end, small ones run beside a large one, one larger than the budget runs
alone, and renditions and inspection hold their share while they decode."""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from storage.media import memory
from storage.media.inspection import inspect_image
from storage.media.memory import DECODES, PixelBudget, give_back
from storage.media.rendering import render
from support.media_factory import image_bytes

WAIT = 10.0
"""Generous: how long a thread that may go ahead is given to get there."""
HELD_BACK = 0.3
"""How long a thread that must wait is watched not to go ahead."""


@contextmanager
def sharing(budget: PixelBudget, pixels: int) -> Iterator[threading.Event]:
    """A thread that takes ``pixels`` of ``budget``; yields the event it sets once inside, and
    lets it out (and joins it) on the way out."""
    inside, leave = threading.Event(), threading.Event()

    def run() -> None:
        with budget.share(pixels):
            inside.set()
            leave.wait(WAIT)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield inside
    finally:
        leave.set()
        thread.join(WAIT)


def test_a_decode_that_would_overrun_the_budget_waits_for_the_others() -> None:
    budget = PixelBudget(10)
    with ExitStack() as later, sharing(budget, 8) as large:
        assert large.wait(WAIT)
        second = later.enter_context(sharing(budget, 5))
        assert not second.wait(HELD_BACK)
        assert budget.in_use == 8
        with sharing(budget, 2) as small:
            assert small.wait(WAIT)  # fits beside the large one
            assert budget.in_use == 10
    assert budget.in_use == 0


def test_the_waiting_decode_starts_when_the_large_one_ends() -> None:
    budget = PixelBudget(10)
    with ExitStack() as later:
        with sharing(budget, 8) as large:
            assert large.wait(WAIT)
            second = later.enter_context(sharing(budget, 5))
            assert not second.wait(HELD_BACK)
        assert second.wait(WAIT)
        assert budget.in_use == 5
    assert budget.in_use == 0


def test_a_decode_larger_than_the_budget_runs_alone() -> None:
    budget = PixelBudget(10)
    with ExitStack() as later, sharing(budget, 1_000) as huge:
        assert huge.wait(WAIT)
        assert budget.in_use == 10
        small = later.enter_context(sharing(budget, 1))
        assert not small.wait(HELD_BACK)
    assert budget.in_use == 0


def test_a_budget_is_positive() -> None:
    with pytest.raises(ValueError):
        PixelBudget(0)


def test_memory_is_given_back_through_glibc_where_it_runs() -> None:
    assert (memory._MALLOC_TRIM is not None) == (platform.libc_ver()[0] == "glibc")
    assert isinstance(give_back(), bool)


def test_renditions_and_inspection_decode_within_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(image_bytes("PNG", (300, 200), seed=5))
    limit = DECODES.limit
    DECODES.limit = 300 * 200 - 1  # so a decode takes it all
    try:
        with sharing(DECODES, 1) as other:
            assert other.wait(WAIT)
            done = threading.Event()

            def work() -> None:
                render(path, [(30, 20, "PNG")])
                inspect_image(path, max_pixels=10**6, min_side=1)
                done.set()

            worker = threading.Thread(target=work)
            worker.start()
            assert not done.wait(HELD_BACK)
        worker.join(WAIT)
        assert done.is_set()
    finally:
        DECODES.limit = limit
