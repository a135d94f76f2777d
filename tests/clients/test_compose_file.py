"""compose.yaml, the Docker Compose example (no Docker engine runs in CI): it parses, its
services hang together, and every MEDIA_GATEWAY_* variable it sets is a real setting.

The gateway keeps its media in MinIO (``x-s3-storage`` merged into its environment) and
only local work files in its volume."""

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
    assert "gateway-data:/data" in gateway["volumes"]
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


def test_the_gateway_stores_media_in_minio(compose: dict[str, Any]) -> None:
    text = COMPOSE.read_text()
    assert "does not implement the S3-compatible store" not in text
    environment = compose["services"]["gateway"]["environment"]
    s3 = compose["x-s3-storage"]
    assert set(s3) >= {
        "MEDIA_GATEWAY_STORAGE_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "S3_ENDPOINT_URL",
    }
    assert {name: environment[name] for name in s3} == s3  # merged (`<<: *s3-storage`)
    bucket = re.fullmatch(r"s3://([a-z0-9.-]+)/\S*", environment["MEDIA_GATEWAY_STORAGE_URL"])
    assert bucket is not None
    assert (
        f"mc mb --ignore-existing local/{bucket.group(1)}"
        in compose["services"]["minio-init"]["command"][0]
    )
    assert environment["S3_ENDPOINT_URL"] == "http://minio:9000"
    minio = compose["services"]["minio"]["environment"]
    assert environment["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert environment["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]


def test_the_code_reads_storage_url() -> None:
    """The setting that compose.yaml relies on selects a store (gateway/app.py)."""
    readers = [
        path.relative_to(ROOT)
        for package in ("gateway", "schema", "storage")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "settings.py" and "storage_url" in path.read_text()
    ]
    assert Path("gateway/app.py") in readers
