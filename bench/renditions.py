"""Rendition throughput: storage.media.rendering (Pillow) against pyvips, in one run.

Makes a 3000x3000 JPEG and a 2000x2000 PNG with photo-like content (gradients,
soft shapes and noise, so the encoders get realistic work) in a temporary
directory, then produces every rendition size at 1x and, where the original
allows it, 2x, once all in JPEG and once all in WebP:

* Pillow: one ``storage.media.rendering.render`` call per source and format (one
  decode, one intermediate, identical (size, format) targets encoded once).
* pyvips: ``pyvips.Image.thumbnail(path, box)`` per target, then
  ``jpegsave_buffer(Q=85, interlace=True, strip=True)`` or
  ``webpsave_buffer(Q=80, strip=True)``; libvips' operation cache is off so
  every run decodes again, and libvips uses its default thread count
  (``VIPS_CONCURRENCY`` sets it).

Two of the nine renditions of each source have the same size as another
(SMALL 2x = MEDIUM 1x, LARGE 2x = ZOOM 1x), which ``render`` encodes once. So
the table gives two ratios of Pillow time / pyvips time (goal: at most 1.5):
``ratio`` against pyvips making all nine, as a naive caller would, and
``distinct`` against pyvips making each distinct size once.

Each case runs once to warm up, then ``--runs`` times (Pillow and the two
pyvips variants alternating); figures are medians. Without pyvips (it needs
the libvips shared library) only the Pillow figures are printed.

Usage: .venv/bin/python bench/renditions.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import PIL
from PIL import Image, ImageDraw, ImageFilter

from storage.enums import RenditionSize
from storage.media import DEFAULT_BOXES, plan, render

FORMATS = ("JPEG", "WEBP")


@dataclass(frozen=True)
class Source:
    label: str
    path: Path
    width: int
    height: int


@dataclass(frozen=True)
class Job:
    """Every rendition of one source in one format: upright sizes and pyvips boxes."""

    source: Source
    format: str
    targets: list[tuple[int, int, str]]
    boxes: list[int]
    distinct_boxes: list[int]


@dataclass(frozen=True)
class Row:
    job: Job
    pillow_seconds: float
    pillow_bytes: int
    vips_seconds: float | None
    vips_bytes: int | None
    vips_distinct_seconds: float | None


def photo(size: tuple[int, int], seed: int) -> Image.Image:
    """Gradients, blurred ellipses and Gaussian noise: compresses like a photograph."""
    rnd = random.Random(seed)
    width, height = size
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = red.transpose(Image.Transpose.ROTATE_90)
    img = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(img)
    for _ in range(60):
        x, y = rnd.randrange(width), rnd.randrange(height)
        side = rnd.randrange(width // 20, width // 4)
        fill = (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256))
        draw.ellipse((x, y, x + side, y + int(side * rnd.uniform(0.5, 1.5))), fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = Image.merge("RGB", [Image.effect_noise(size, 24) for _ in range(3)])
    return Image.blend(img, noise, 0.12)


def make_sources(directory: Path) -> list[Source]:
    jpeg = directory / "source-3000.jpg"
    photo((3000, 3000), seed=1).save(jpeg, quality=90)
    png = directory / "source-2000.png"
    photo((2000, 2000), seed=2).save(png)
    return [
        Source("3000x3000 JPEG", jpeg, 3000, 3000),
        Source("2000x2000 PNG", png, 2000, 2000),
    ]


def job(source: Source, fmt: str) -> Job:
    targets: list[tuple[int, int, str]] = []
    boxes: list[int] = []
    for size in RenditionSize:
        planned = plan(source.width, source.height, size)
        targets.append((planned.width, planned.height, fmt))
        boxes.append(DEFAULT_BOXES[size])
        if planned.size_2x is not None:
            targets.append((*planned.size_2x, fmt))
            boxes.append(2 * DEFAULT_BOXES[size])
    box_by_size: dict[tuple[int, int], int] = {}
    for (width, height, _), box in zip(targets, boxes, strict=True):
        box_by_size.setdefault((width, height), box)
    return Job(source, fmt, targets, boxes, list(box_by_size.values()))


def run_pillow(work: Job) -> int:
    return sum(len(out.data) for out in render(work.source.path, work.targets))


def run_vips(vips: ModuleType, work: Job, boxes: list[int]) -> int:
    total = 0
    path = str(work.source.path)
    for box in boxes:
        thumb = vips.Image.thumbnail(path, box)
        if work.format == "JPEG":
            data = thumb.jpegsave_buffer(Q=85, interlace=True, strip=True)
        else:
            data = thumb.webpsave_buffer(Q=80, strip=True)
        total += len(data)
    return total


def timed(action: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    size = action()
    return time.perf_counter() - start, size


def measure(work: Job, vips: ModuleType | None, runs: int) -> Row:
    run_pillow(work)
    if vips is not None:
        run_vips(vips, work, work.boxes)
    pillow_times: list[float] = []
    vips_times: list[float] = []
    distinct_times: list[float] = []
    pillow_bytes = 0
    vips_bytes: int | None = None
    for _ in range(runs):
        seconds, pillow_bytes = timed(lambda: run_pillow(work))
        pillow_times.append(seconds)
        if vips is not None:
            seconds, vips_bytes = timed(lambda: run_vips(vips, work, work.boxes))
            vips_times.append(seconds)
            seconds, _ = timed(lambda: run_vips(vips, work, work.distinct_boxes))
            distinct_times.append(seconds)
    return Row(
        work,
        statistics.median(pillow_times),
        pillow_bytes,
        statistics.median(vips_times) if vips_times else None,
        vips_bytes,
        statistics.median(distinct_times) if distinct_times else None,
    )


def load_pyvips() -> tuple[ModuleType | None, str]:
    try:
        import pyvips  # type: ignore[import-untyped, import-not-found, unused-ignore]
    except (ImportError, OSError) as exc:
        return None, f"pyvips unavailable ({type(exc).__name__}: {exc}); Pillow figures only"
    pyvips.cache_set_max(0)
    libvips = ".".join(str(pyvips.version(part)) for part in range(3))
    threads = os.environ.get("VIPS_CONCURRENCY", "default")
    return pyvips, f"pyvips {pyvips.__version__}, libvips {libvips}, VIPS_CONCURRENCY={threads}"


def _ratio(numerator: float, denominator: float | None) -> str:
    return "-" if denominator is None else f"{numerator / denominator:.2f}"


def print_table(rows: list[Row], runs: int) -> None:
    header = (
        f"{'source':<16}{'format':<7}{'images':>7}{'Pillow img/s':>14}{'pyvips img/s':>14}"
        f"{'ratio':>8}{'distinct':>10}{'Pillow KB':>11}{'pyvips KB':>11}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        count = len(row.job.targets)
        vips_rate = "-" if row.vips_seconds is None else f"{count / row.vips_seconds:.1f}"
        vips_kb = "-" if row.vips_bytes is None else f"{row.vips_bytes / 1024:.0f}"
        print(
            f"{row.job.source.label:<16}{row.job.format:<7}{count:>7}"
            f"{count / row.pillow_seconds:>14.1f}{vips_rate:>14}"
            f"{_ratio(row.pillow_seconds, row.vips_seconds):>8}"
            f"{_ratio(row.pillow_seconds, row.vips_distinct_seconds):>10}"
            f"{row.pillow_bytes / 1024:>11.0f}{vips_kb:>11}"
        )
    images = sum(len(row.job.targets) for row in rows)
    pillow_total = sum(row.pillow_seconds for row in rows)
    line = f"{'all':<23}{images:>7}{images / pillow_total:>14.1f}"
    if all(row.vips_seconds is not None for row in rows):
        vips_total = sum(row.vips_seconds or 0.0 for row in rows)
        distinct_total = sum(row.vips_distinct_seconds or 0.0 for row in rows)
        line += (
            f"{images / vips_total:>14.1f}{pillow_total / vips_total:>8.2f}"
            f"{pillow_total / distinct_total:>10.2f}"
        )
    print("-" * len(header))
    print(line)
    print(
        f"medians of {runs} runs; ratio = Pillow time / pyvips time for the same renditions "
        "(goal <= 1.5);\ndistinct = the same against pyvips making each distinct size once"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case (default 5)")
    args = parser.parse_args(argv)

    vips, vips_note = load_pyvips()
    print(f"Python {sys.version.split()[0]}, Pillow {PIL.__version__}, {os.cpu_count()} CPUs")
    print(vips_note)
    with tempfile.TemporaryDirectory(prefix="bench-renditions-") as tmp:
        sources = make_sources(Path(tmp))
        rows = [measure(job(source, fmt), vips, args.runs) for source in sources for fmt in FORMATS]
    print_table(rows, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
