"""The bound of every list the schema takes as input: each list argument and each list field of
an input type, by its GraphQL name. gateway/limits.py checks them before anything runs, on the
document's literals and on the variables' values alike; a test checks that every list of the
schema is here.

Two kinds of bounds:

* a list of a query, or one whose repeats make no sense (``sizes``): over ``maximum`` the
  request is refused before execution (a GraphQL error, code BAD_USER_INPUT);
* a list of a mutation that the contract answers with userErrors TOO_MANY (ids, sync items,
  bulk inputs, files): the use case refuses it over ``maximum``, and the request itself is
  refused only far over it (``refused_over``), so that a huge list never reaches a resolver.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.enums import RenditionSize
from storage.validation import MAX_LIST

CEILING_FACTOR = 10
"""How far over its maximum a TOO_MANY list is refused outright."""

MAX_ENTRIES = 20_000
"""Entries of all the lists in one argument, nested ones included (the largest a client needs,
a full syncImagesBulk, holds 100 + 100 x 100)."""


@dataclass(frozen=True)
class ListBound:
    maximum: int
    too_many: bool = False
    """The contract answers a list over ``maximum`` with userErrors TOO_MANY."""
    distinct: bool = False
    """Each entry at most once."""
    counts_output: bool = False
    """The field answers one item per entry (its list, or its payload's lists)."""

    @property
    def refused_over(self) -> int:
        """The length over which the request is refused before anything runs."""
        return self.maximum * CEILING_FACTOR if self.too_many else self.maximum


def _ids() -> ListBound:
    return ListBound(MAX_LIST, too_many=True, counts_output=True)


ARGUMENTS: dict[tuple[str, str, str], ListBound] = {
    ("Image", "renditions", "sizes"): ListBound(
        len(RenditionSize), distinct=True, counts_output=True
    ),
    ("Query", "videos", "productIds"): ListBound(MAX_LIST),
    ("Query", "videos", "productSkus"): ListBound(MAX_LIST),
    ("Mutation", "reorderImages", "imageIds"): _ids(),
    ("Mutation", "reorderVideos", "videoIds"): _ids(),
    ("Mutation", "deleteImages", "ids"): _ids(),
    ("Mutation", "deleteVideos", "ids"): _ids(),
    ("Mutation", "regenerateRenditions", "imageIds"): _ids(),
    ("Mutation", "syncImagesBulk", "inputs"): _ids(),
}
"""(type, field, argument) -> bound."""

INPUT_FIELDS: dict[tuple[str, str], ListBound] = {
    ("ProductFilter", "skus"): ListBound(MAX_LIST),
    ("ImageFilter", "productIds"): ListBound(MAX_LIST),
    ("ImageFilter", "productSkus"): ListBound(MAX_LIST),
    ("ImageFilter", "sourceUrls"): ListBound(MAX_LIST),
    ("ProductCreateInput", "options"): ListBound(MAX_LIST, too_many=True),
    ("ProductCreateInput", "images"): ListBound(MAX_LIST, too_many=True),
    ("ProductUpdateInput", "options"): ListBound(MAX_LIST, too_many=True),
    ("SyncImagesInput", "images"): ListBound(MAX_LIST, too_many=True),
    ("UploadImagesInput", "files"): ListBound(MAX_LIST, too_many=True),
}
"""(input type, field) -> bound."""
