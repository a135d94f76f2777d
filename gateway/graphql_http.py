"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/) beyond what Strawberry
does: the response media type negotiated from ``Accept``, the status code of a result in that
media type, and the caching headers of GET queries. Pure functions; the view applies them."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from graphql import GraphQLError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
SUPPORTED = (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON)
"""In the order that breaks a perfect tie (``*/*``): the legacy type first, as the spec's
watershed rules ask of a client that does not name ``application/graphql-response+json``."""

VARY = "Accept, Authorization"
NO_STORE = "private, no-store"


# ---- Accept ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MediaRange:
    type: str
    subtype: str
    q: float
    index: int
    charset: str | None

    def specificity(self, media_type: str) -> int | None:
        """2 for ``type/subtype``, 1 for ``type/*``, 0 for ``*/*``; None when it does not match."""
        kind, _, sub = media_type.partition("/")
        if self.charset is not None and self.charset not in ("utf-8", "utf8", "*"):
            return None
        if self.type == "*" and self.subtype == "*":
            return 0
        if self.type != kind:
            return None
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else None


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an ``Accept`` header (RFC 9110 12.5.1); malformed ones are dropped."""
    ranges: list[MediaRange] = []
    for index, item in enumerate(header.split(",")):
        media, *parameters = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q, charset, valid = 1.0, None, True
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').lower()
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    valid = False
                if not 0.0 <= q <= 1.0:
                    valid = False
            elif name == "charset":
                charset = value
        if valid:
            ranges.append(MediaRange(kind, sub, q, index, charset))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The response media type for an ``Accept`` header, or None when it allows neither.

    No header (or an empty one) means ``application/json`` (the spec's legacy watershed rule,
    which its audit expects). Otherwise the highest ``q`` wins, as given by the most specific
    range that matches each type; between equal weights an explicitly named type beats one
    that only a wildcard allows, then the one listed first wins, and ``*/*`` alone gives
    ``application/json``.
    """
    if accept is None or not accept.strip():
        return APPLICATION_JSON
    ranges = parse_accept(accept)
    best: tuple[float, int, int] | None = None
    chosen: str | None = None
    for media_type in SUPPORTED:
        matches = [(r.specificity(media_type), r) for r in ranges]
        scored = [(s, r) for s, r in matches if s is not None]
        if not scored:
            continue
        # RFC 9110: the most specific matching range decides the weight (first one if several).
        specificity, decisive = max(scored, key=lambda pair: (pair[0], -pair[1].index))
        if decisive.q <= 0:
            continue
        key = (decisive.q, specificity, -decisive.index)
        if best is None or key > best:
            best, chosen = key, media_type
    return chosen


def content_type(media_type: str) -> str:
    return f"{media_type}; charset=utf-8"


# ---- status codes ------------------------------------------------------------------------


class Outcome(Enum):
    """What became of one GraphQL request; the value is its status in graphql-response+json."""

    EXECUTED = 200
    """Execution ran: data, possibly partial or null, possibly with field errors."""
    REQUEST_ERROR = 400
    """Never executed: a parse, validation, operation or variable coercion error."""
    UNAUTHENTICATED = 401
    FORBIDDEN = 403


def outcome(data: object, errors: Sequence[GraphQLError] | None) -> Outcome:
    """A result with data, or with an error that has a path (a field error, even one that
    nulled the whole data), was executed; otherwise nothing ran. Our authorisation refusals
    (schema/auth.py) are such results, with the code UNAUTHENTICATED or FORBIDDEN."""
    if data is not None or not errors or any(error.path for error in errors):
        return Outcome.EXECUTED
    codes = {(error.extensions or {}).get("code") for error in errors}
    if "UNAUTHENTICATED" in codes:
        return Outcome.UNAUTHENTICATED
    if "FORBIDDEN" in codes:
        return Outcome.FORBIDDEN
    return Outcome.REQUEST_ERROR


# ---- GET caching -------------------------------------------------------------------------


def etag(media_type: str, body: bytes) -> str:
    """A strong validator of one representation: the body and the media type it is sent as."""
    digest = hashlib.sha256(media_type.encode() + b"\n" + body).hexdigest()
    return f'"{digest[:32]}"'


def matches_if_none_match(header: str | None, tag: str) -> bool:
    """RFC 9110 13.1.2: ``*`` or any listed tag equal to ``tag`` under weak comparison."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in header.split(","))


def cache_control(*, public: bool, max_age: int) -> str:
    return f"public, max-age={max_age}" if public and max_age > 0 else NO_STORE
