#!/usr/bin/env python3
"""Sync one product's images from an ERP into the media gateway.

The whole image list of one SKU goes in one call to the ``syncImages`` mutation: a plain
``requests`` POST of a JSON body with an ``Authorization: Token …`` header, as ERP
integrations already send. The list replaces what the product had, all or nothing: URLs the
product already has keep their stored image (nothing is downloaded again) and take the new
order, new URLs are downloaded by the gateway, and images whose URL is left out are deleted.
An empty list deletes them all. The product must exist (sync never creates products).

Usage::

    export MEDIA_GATEWAY_URL=https://media.example.com/graphql
    export MEDIA_GATEWAY_TOKEN=mgw_…     # media-gateway tokens create erp --scope write
    python erp_sync.py 1182701025 https://erp.example.com/img/1.png swatch=https://erp.example.com/img/2.png
    python erp_sync.py 1182701025                      # no images: delete them all
    python erp_sync.py --from-json product.json        # the ERP's export, see read_json()

Each IMAGE is a URL, or TYPE=URL with TYPE one of default, swatch, picto. Images are
ordered as given (or by ``order`` in the JSON file, ties in file order).

Prints the product's images after the sync. Exit status: 0 when synced; 1 when the gateway
refused the list (its userErrors are printed, nothing changed); 2 on a usage, network,
authentication or server error.

Needs only Python 3.9+ and ``requests`` (``pip install requests``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import requests

DEFAULT_GATEWAY = "http://127.0.0.1:8000/graphql"
IMAGE_TYPES = ("default", "swatch", "picto")
TIMEOUT = (10, 300)  # seconds: connect, then the whole sync (the gateway downloads first)

SYNC_IMAGES = """
mutation SyncImages($input: SyncImagesInput!) {
  syncImages(input: $input) {
    productSku
    images {
      url
      position
      imageType
      status
      error
      image { id url width height mimeType }
    }
    userErrors { field code message }
  }
}
"""


class Failure(Exception):
    """A failure other than userErrors: usage, network, authentication or server."""


def parse_image(text: str, position: int) -> dict[str, Any]:
    """``URL`` or ``TYPE=URL`` -> a SyncImageItem."""
    image_type, sep, url = text.partition("=")
    if sep and image_type.lower() in IMAGE_TYPES and "://" not in image_type:
        return {"url": url, "position": position, "imageType": image_type.upper()}
    return {"url": text, "position": position, "imageType": "DEFAULT"}


def read_json(path: str) -> tuple[str, list[dict[str, Any]]]:
    """The ERP's own export format: ``{"product_sku", "images": [{"url", "order",
    "image_type"}]}``, as sent to REST downloadable-image endpoints."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        sku = str(data["product_sku"])
        items = [
            {
                "url": str(image["url"]),
                "position": int(image.get("order", 0)),
                "imageType": str(image.get("image_type") or "default").upper(),
            }
            for image in data["images"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise Failure(f"cannot read {path}: {error}") from error
    return sku, items


def sync_images(gateway: str, token: str, sku: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    """Send the whole list of one SKU; return the ``syncImages`` payload."""
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "Authorization": f"Token {token}",
    }
    body = {"query": SYNC_IMAGES, "variables": {"input": {"productSku": sku, "images": images}}}
    try:
        response = requests.post(gateway, headers=headers, data=json.dumps(body), timeout=TIMEOUT)
    except requests.RequestException as error:
        raise Failure(f"cannot reach {gateway}: {error}") from error
    try:
        result = response.json()
    except ValueError:
        raise Failure(
            f"HTTP {response.status_code} from {gateway}: {response.text[:500]}"
        ) from None
    if result.get("errors"):
        # Top-level GraphQL errors: a bad or read-only token, a malformed request, a fault.
        messages = "; ".join(
            f"{error.get('message')} ({(error.get('extensions') or {}).get('code', 'ERROR')})"
            for error in result["errors"]
        )
        raise Failure(f"HTTP {response.status_code}: {messages}")
    if not response.ok or not result.get("data"):
        raise Failure(f"HTTP {response.status_code} from {gateway}: {response.text[:500]}")
    payload: dict[str, Any] = result["data"]["syncImages"]
    return payload


def print_summary(payload: dict[str, Any]) -> None:
    images = payload["images"] or []
    print(f"{payload['productSku']}: {len(images)} image(s) synced")
    for item in images:
        stored = item.get("image") or {}
        size = f"{stored.get('width')}x{stored.get('height')}" if stored else "-"
        print(
            f"  {item['position']:>3}  {item['imageType']:<7}  {item['status']:<10}  "
            f"{size:>11}  {item['url']}"
        )


def print_user_errors(payload: dict[str, Any]) -> None:
    print(f"{payload['productSku']}: refused, nothing changed", file=sys.stderr)
    for error in payload["userErrors"]:
        field = ".".join(error.get("field") or []) or "-"
        print(f"  {error['code']}  {field}: {error['message']}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Replace one product's images in the media gateway with a list of URLs."
    )
    parser.add_argument(
        "--gateway",
        default=os.environ.get("MEDIA_GATEWAY_URL", DEFAULT_GATEWAY),
        help="GraphQL endpoint (default: $MEDIA_GATEWAY_URL or %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("MEDIA_GATEWAY_TOKEN"),
        help="a write token (default: $MEDIA_GATEWAY_TOKEN)",
    )
    parser.add_argument("--from-json", metavar="FILE", help="read the SKU and images from FILE")
    parser.add_argument("sku", nargs="?", help="the product's SKU")
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="URL or TYPE=URL, in order")
    args = parser.parse_args(argv)

    try:
        if not args.token:
            raise Failure("no token: pass --token or set MEDIA_GATEWAY_TOKEN")
        if args.from_json:
            if args.sku or args.images:
                raise Failure("give either --from-json FILE or SKU [IMAGE ...], not both")
            sku, images = read_json(args.from_json)
        elif args.sku:
            sku = args.sku
            images = [parse_image(text, position) for position, text in enumerate(args.images)]
        else:
            raise Failure("give a SKU (and its image URLs) or --from-json FILE")
        payload = sync_images(args.gateway, args.token, sku, images)
    except Failure as error:
        print(f"erp_sync: {error}", file=sys.stderr)
        return 2

    if payload["userErrors"]:
        print_user_errors(payload)
        return 1
    print_summary(payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
