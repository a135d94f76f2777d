"""What every resolver gets as ``info.context``."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from schema.loaders import Loaders
from storage.backend import Backend
from storage.enums import TokenScope


@dataclass
class Context:
    backend: Backend
    public_url: str
    scope: TokenScope | None = None
    bad_token: bool = False
    """A token was sent but is unknown or revoked."""
    public_read: bool = True
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.backend.db)

    def media_url(self, key: str) -> str:
        return f"{self.public_url}/media/{key}"


Info = strawberry.Info[Context, None]
