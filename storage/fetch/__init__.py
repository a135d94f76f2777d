"""The safe URL fetcher: address policy (``policy``), a transport pinned to checked addresses
(``transport``), downloads (``client``)."""

from storage.fetch.client import Fetcher
from storage.fetch.policy import FetchPolicy, address_allowed, check_url

__all__ = ["FetchPolicy", "Fetcher", "address_allowed", "check_url"]
