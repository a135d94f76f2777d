"""The safe URL fetcher: address policy, a transport pinned to checked addresses, downloads."""
