"""compose.yaml, the Docker Compose example (no Docker engine runs in CI): it parses, its
services hang together, and every MEDIA_GATEWAY_* variable it sets is a real setting.

While the S3-compatible store is not implemented, the file keeps the gateway on a named
media volume and parks the S3 variables in ``x-s3-storage``; a test notices when the code
starts reading ``storage_url`` so that the example is updated with it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
PREFIX = "MEDIA_GATEWAY_"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_services_volumes_and_dependencies_hang_together(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"gateway", "postgres", "minio", "minio-init"}
    volumes = set(compose["volumes"])
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for mount in service.get("volumes", []):
            assert mount.split(":")[0] in volumes, (name, mount)

    gateway = services["gateway"]
    assert gateway["build"] == "." and (ROOT / "Dockerfile").is_file()
    assert gateway["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert gateway["depends_on"]["minio-init"] == {"condition": "service_completed_successfully"}
    assert "media-data:/data" in gateway["volumes"]
    assert "8000:8000" in gateway["ports"]

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]

    assert services["minio"]["image"].startswith("minio/minio:")
    assert "healthcheck" in services["minio"]
    init = services["minio-init"]
    assert init["image"].startswith("minio/mc:")
    assert init["depends_on"]["minio"] == {"condition": "service_healthy"}


def test_gateway_environment_names_real_settings(compose: dict[str, Any]) -> None:
    environment = compose["services"]["gateway"]["environment"]
    parked = compose["x-s3-storage"]
    fields = set(Settings.model_fields)
    for name in [*environment, *parked]:
        if name.startswith(PREFIX):
            assert name.removeprefix(PREFIX).lower() in fields, name

    database = environment["MEDIA_GATEWAY_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+asyncpg://media:[^@]+@postgres:5432/media", database)
    postgres = compose["services"]["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("media", "media")
    assert environment["MEDIA_GATEWAY_PUBLIC_URL"].endswith("http://localhost:8000}")
    assert environment["MEDIA_GATEWAY_MEDIA_ROOT"].startswith("/data/")


def test_s3_settings_are_parked_until_the_store_exists(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "does not implement the S3-compatible store yet" in text
    environment = compose["services"]["gateway"]["environment"]
    assert "MEDIA_GATEWAY_STORAGE_URL" not in environment

    parked = compose["x-s3-storage"]
    assert set(parked) >= {
        "MEDIA_GATEWAY_STORAGE_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "S3_ENDPOINT_URL",
    }
    bucket = re.fullmatch(r"s3://([a-z0-9.-]+)/\S*", parked["MEDIA_GATEWAY_STORAGE_URL"])
    assert bucket is not None
    assert (
        f"mc mb --ignore-existing local/{bucket.group(1)}"
        in compose["services"]["minio-init"]["command"][0]
    )
    assert parked["S3_ENDPOINT_URL"] == "http://minio:9000"


def test_the_s3_note_is_still_true() -> None:
    """Fails once the code reads ``storage_url``: then switch compose.yaml to MinIO (merge
    ``x-s3-storage`` into the gateway's environment, drop the media volume and the note)."""
    readers = [
        path.relative_to(ROOT)
        for package in ("gateway", "schema", "storage")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "settings.py" and "storage_url" in path.read_text()
    ]
    assert readers == [], (
        f"{readers} read storage_url: the S3 store seems implemented, so update compose.yaml "
        "(and its README section) to use MinIO"
    )
