"""A field that fails beside others whose loads it shares: graphql-core cancels the failed
object's other fields, which must not cancel the DataLoader loads that another object's
fields await too (the request would fail whole, a 500)."""

from __future__ import annotations

import pytest

from support.api import Api
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio


async def test_an_error_leaves_the_loads_of_other_fields_alone(api: Api) -> None:
    product = await api.create_product("sku-s")
    image = (await api.upload_image(product["id"], image_bytes()))["image"]
    refused = "x" * 300
    body = await api.post(
        f'query($id: ID!) {{ failed: product(id: $id) {{ images(option: "{refused}") {{ id }} '
        "mainImage { id } } kept: product(id: $id) { mainImage { id } } }",
        {"id": product["id"]},
        token=False,
    )
    assert body["data"] == {"failed": None, "kept": {"mainImage": {"id": image["id"]}}}
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["failed", "images"], "BAD_USER_INPUT")
    ]
