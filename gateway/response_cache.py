"""The response cache of public reads, which no reader can see stale.

An answer is kept under the catalogue version read before its query ran (storage/sql/
database.py: every write transaction raises the version as it commits) and served only while
that version is still the current one. An answer whose data raced a write was computed after
the version it is kept under changed, so it is never served: a read after an acknowledged
write, in any process, executes again. Bounded by bytes, least recently used dropped first.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from gateway.metrics import Metrics

ENTRY_OVERHEAD = 200
"""Bytes an entry costs beyond its key and body (the objects and the dictionary slot)."""


@dataclass(frozen=True)
class Answer:
    version: int
    body: bytes
    operation: str | None
    """The name the operation ran as, for the metrics and the access line of a hit."""


def request_key(*parts: str | bytes) -> str:
    """A digest of everything an answer depends on besides the catalogue version."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def version_etag(version: int, key: str) -> str:
    """A strong validator of the answer to ``key`` at ``version``: it is known without
    running the query, since that answer is the same while the version is."""
    digest = hashlib.sha256(f"{version}\n{key}".encode()).hexdigest()
    return f'"{digest[:32]}"'


class ResponseCache:
    def __init__(self, max_bytes: int, metrics: Metrics) -> None:
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.size = 0
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def get(self, key: str, version: int) -> Answer | None:
        """The answer kept for ``key`` at exactly ``version``, the current one."""
        answer = self._answers.get(key)
        if answer is not None and answer.version < version:
            self._drop(key)
        if answer is None or answer.version != version:
            self.metrics.cache_misses.inc()
            return None
        self._answers.move_to_end(key)
        self.metrics.cache_hits.inc()
        return answer

    def put(self, key: str, answer: Answer) -> None:
        """Keep ``answer``, unless an answer of a later version is kept for ``key``."""
        kept = self._answers.get(key)
        if _cost(key, answer) > self.max_bytes or (kept and kept.version > answer.version):
            return
        if kept is not None:
            self._drop(key)
        self._answers[key] = answer
        self.size += _cost(key, answer)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._answers)))
            self.metrics.cache_evictions.inc()
        self.metrics.cache_bytes.set(self.size)

    def _drop(self, key: str) -> None:
        self.size -= _cost(key, self._answers.pop(key))
        self.metrics.cache_bytes.set(self.size)


def _cost(key: str, answer: Answer) -> int:
    return len(key) + len(answer.body) + len(answer.operation or "") + ENTRY_OVERHEAD


__all__ = ["Answer", "ResponseCache", "request_key", "version_etag"]
