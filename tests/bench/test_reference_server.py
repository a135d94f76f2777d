"""The harness of bench/http_bench.py cannot drift from the gateway unnoticed: on a small
store seeded through the API, the reference server (bench/reference_server.py, loaded from
the gateway's snapshot) answers the bench's documents with the same data and the same bytes
as the live gateway, cold (an unused variable) and warm, and takes the mixed scenario's
write alike; and the bench's MP4 files are accepted by both upload endpoints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench import http_store as store
from bench.http_bench import (
    GATEWAY_SETTINGS,
    MIB,
    compare,
    gateway_upload,
    readings,
    reference_upload,
    running_reference,
)
from support.server_process import GatewayProcess, running_gateway

pytestmark = pytest.mark.live


@dataclass
class Harness:
    gateway: GatewayProcess
    gateway_client: store.GraphQLClient
    reference_base: str
    reference_client: store.GraphQLClient
    sku: str
    folder: Path

    @property
    def clients(self) -> list[store.GraphQLClient]:
        return [self.gateway_client, self.reference_client]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    folder = tmp_path_factory.mktemp("bench")
    with running_gateway(folder / "gateway", **GATEWAY_SETTINGS) as gateway:
        client = store.GraphQLClient(gateway.base, gateway.admin_token())
        sku = store.seed(client, products=3, images=2, videos=1, image_size=(600, 450))
        snapshot = folder / "snapshot.json"
        store.snapshot(client, snapshot)
        with running_reference(snapshot, folder) as (base, _pid):
            reference = store.GraphQLClient(base)
            yield Harness(gateway, client, base, reference, sku, folder)
            reference.close()
        client.close()


@pytest.mark.parametrize(
    "scenario", ["storefront-cold", "storefront-warm", "product-cold", "product-warm"]
)
def test_same_data_and_bytes(harness: Harness, scenario: str) -> None:
    reading = readings(harness.sku)[scenario]
    variables = {**reading.variables, "nonce": "test-1"} if reading.cold else reading.variables
    assert compare(harness.clients, reading.query, variables)[:2] == (True, True)
    assert harness.gateway_client.raw(reading.query, variables).count(b"/media/") >= 6


def test_product_page_shows_videos_and_every_rendition(harness: Harness) -> None:
    product = harness.reference_client.data(store.PRODUCT_PAGE, {"sku": harness.sku})["product"]
    assert len(product["videos"]) == 1
    assert [len(image["renditions"]) for image in product["images"]] == [5, 5]


def test_the_mixed_write_answers_alike(harness: Harness) -> None:
    products = json.loads((harness.folder / "snapshot.json").read_text())["products"]
    variables = {"id": products[1]["images"][0]["id"], "alt": "A new alt"}
    answers = [client.data(store.UPDATE_ALT, variables) for client in harness.clients]
    assert answers[0] == answers[1]
    assert answers[0]["updateImage"]["image"]["alt"] == "A new alt"


def test_bench_mp4_is_accepted_by_both_upload_endpoints(harness: Harness) -> None:
    path = harness.folder / "upload.mp4"
    store.write_mp4(path, 3 * MIB, chunk=MIB)
    assert path.stat().st_size == 3 * MIB
    assert gateway_upload(harness.gateway, harness.gateway_client, harness.sku)(path) > 0
    assert reference_upload(harness.reference_base)(path) > 0
    # The gateway's copy is deleted again: the product keeps only its seeded video.
    page = harness.gateway_client.data(store.PRODUCT_PAGE, {"sku": harness.sku})
    assert len(page["product"]["videos"]) == 1
