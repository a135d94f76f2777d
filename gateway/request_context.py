"""What the gateway knows about the request being handled, shared by the access log
(gateway/observability.py) and the GraphQL metrics extension (gateway/metrics.py)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class RequestInfo:
    """What the access line of the current request reports besides HTTP."""

    request_id: str
    operation: str | None = None
    operation_type: str | None = None
    outcome: str | None = None


current: ContextVar[RequestInfo | None] = ContextVar("gateway_request", default=None)


def note_operation(name: str | None, operation_type: str, outcome: str) -> None:
    """Called by the GraphQL extension: the operation appears in the access line."""
    info = current.get()
    if info is not None:
        info.operation = name[:100] if name else None
        info.operation_type = operation_type
        info.outcome = outcome


def request_id_from(value: str | None) -> str:
    """The client's request id when it is sane, else a new one."""
    if value is not None and REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex
