"""The gateway's own pages over HTTP (no browser): GraphiQL at GET /graphql and the media
manager at /manage, with every file they load served from /static, nothing from any other
host, the vendored GraphiQL assets as pinned (assets.json) with their licences, and caching
headers that suit versioned and unversioned files."""

from __future__ import annotations

import hashlib
import json
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
from graphql import parse, validate

from gateway.assets import STATIC_DIR, vendored
from gateway.graphiql import default_document
from gateway.manage import content_security_policy
from schema import build_schema

HTML = {"Accept": "text/html"}
IMMUTABLE = "public, max-age=31536000, immutable"


class Links(HTMLParser):
    """The URLs a page loads: script src, link href, img src; and inline JSON blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []
        self.json_blocks: list[str] = []
        self._in_json = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            value = values.get(name)
            if value is not None and tag in ("script", "link", "img", "iframe", "source"):
                self.urls.append((tag, value))
        self._in_json = tag == "script" and values.get("type") == "application/json"

    def handle_data(self, data: str) -> None:
        if self._in_json:
            self.json_blocks.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in_json = False


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def _same_host(base: str, url: str) -> bool:
    absolute = urljoin(base, url)
    return absolute.startswith("data:") or urlsplit(absolute).netloc == urlsplit(base).netloc


CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")


def _css_urls(text: str) -> list[str]:
    return [a or b for a, b in CSS_URL.findall(text)]


async def test_graphiql_page_loads_only_the_gateways_files(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unpkg" not in response.text and "cdn" not in response.text.lower()

    page = links(response.text)
    scripts = [url for tag, url in page.urls if tag == "script"]
    styles = [url for tag, url in page.urls if tag == "link" and url.endswith(".css")]
    assert len(scripts) == 5 and len(styles) == 2, page.urls
    for tag, url in page.urls:
        assert _same_host("http://testserver/graphql", url), (tag, url)
    for url in scripts + styles:
        assert url.startswith("/static/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        expected = "text/css" if url.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"].startswith(expected), url
        if url.endswith(".css"):
            for found in _css_urls(asset.text):
                assert _same_host(f"http://testserver{url}", found), (url, found)
        if "/gateway-graphiql.js" in url:
            assert asset.headers["cache-control"] == "no-cache"
        else:
            assert asset.headers["cache-control"] == IMMUTABLE, url

    # The page's settings: the endpoint, the default document and the Headers hint.
    (config_text,) = page.json_blocks
    config = json.loads(config_text)
    assert config["url"] == "/graphql"
    assert config["defaultQuery"] == default_document()
    assert json.loads(config["defaultHeaders"]) == {
        "Authorization": "Bearer <paste a token; queries need none>"
    }


async def test_graphiql_keeps_json_answers_for_json_clients(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


def test_default_document_is_valid_against_the_schema() -> None:
    document = parse(default_document())
    operations = [d.name.value for d in document.definitions if d.name]  # type: ignore[attr-defined]
    assert operations == ["StorefrontProducts", "CreateProduct"]
    assert validate(build_schema()._schema, document) == []


def test_vendored_assets_match_the_manifest_and_carry_licences() -> None:
    manifest = vendored()
    assert {entry["name"] for entry in manifest.values()} == {
        "react",
        "react-dom",
        "graphiql",
        "@graphiql/plugin-explorer",
        "graphiql-explorer",
    }
    folders = set()
    for entry in manifest.values():
        folder = STATIC_DIR / "graphiql" / str(entry["folder"])
        folders.add(folder.name)
        files = entry["files"]
        assert isinstance(files, dict) and "LICENSE" in files, entry
        assert "MIT License" in (folder / "LICENSE").read_text()
        for name, digest in files.items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
        assert {p.name for p in folder.iterdir()} == set(files), folder
    on_disk = {p.name for p in (STATIC_DIR / "graphiql").iterdir() if p.is_dir()}
    assert on_disk == folders


async def test_manage_page_and_its_files(client: httpx.AsyncClient) -> None:
    response = await client.get("/manage")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert "connect-src 'self'" in response.headers["content-security-policy"]
    assert "<h1>Media manager</h1>" in response.text

    page = links(response.text)
    urls = [url for tag, url in page.urls if tag in ("script", "link") and "data:" not in url]
    assert sorted(urls) == ["static/manage/manage.css", "static/manage/manage.js"]
    for url in urls:
        asset = await client.get(urljoin("http://testserver/manage", url))
        assert asset.status_code == 200, url
        assert asset.headers["cache-control"] == "no-cache"
        assert asset.headers["etag"]
        again = await client.get(
            urljoin("http://testserver/manage", url),
            headers={"If-None-Match": asset.headers["etag"]},
        )
        assert again.status_code == 304
    script = (await client.get("/static/manage/manage.js")).text
    assert re.findall(r"https?://", script) == []
    assert "sessionStorage" in script and "localStorage" not in script
    assert "document.cookie" not in script


def test_manage_page_allows_images_from_public_url() -> None:
    policy = content_security_policy("https://media.example.com/base")
    assert "img-src 'self' data: blob: https://media.example.com;" in policy
    assert "img-src 'self' data: blob:;" in content_security_policy(None)


async def test_static_refuses_paths_outside_its_folder(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/../settings.py",
        "/static/%2e%2e/settings.py",
        "/static/graphiql/../../app.py",
        "/static/nope.js",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path


async def test_default_document_runs(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": default_document(), "operationName": "StorefrontProducts"},
    )
    assert response.status_code == 200
    assert response.json() == {
        "data": {
            "products": {
                "totalCount": 0,
                "pageInfo": {"hasNextPage": False, "endCursor": None},
                "edges": [],
            }
        }
    }
