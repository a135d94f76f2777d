"""What storage reports as it works, for whoever counts it.

Storage knows nothing about metrics: use cases call these methods on ``backend.events``, and
the default object does nothing. The gateway passes a subclass that updates its Prometheus
counters (``gateway.metrics``), so the arrows stay one way (gateway -> schema -> storage).

Each method is called after the fact it reports (an upload counts once its transaction has
committed), must be cheap, and must never raise.
"""

from __future__ import annotations

from typing import Literal

MediaKind = Literal["image", "video"]


class MediaEvents:
    """The hooks, as no-ops. Subclass and override the ones you count."""

    def media_uploaded(self, kind: MediaKind, size: int) -> None:
        """An uploaded file of ``size`` bytes was stored (its row committed)."""

    def rendition_generated(self) -> None:
        """A rendition was rendered and stored (not one served from the store)."""

    def fetch_failed(self, code: str) -> None:
        """A URL fetch failed; ``code`` is the user error it became (an ``ErrorCode``)."""


__all__ = ["MediaEvents", "MediaKind"]
