"""The safe URL fetcher: address policy, a transport pinned to checked addresses, downloads."""

from storage.fetch.client import Fetcher, FetchPolicy, address_allowed, check_url

__all__ = ["FetchPolicy", "Fetcher", "address_allowed", "check_url"]
