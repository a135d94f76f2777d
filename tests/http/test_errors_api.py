"""Server faults reach clients as a masked error: no stack trace, no SQL."""

from __future__ import annotations

import sqlalchemy as sa

from support.api import Api


async def test_database_fault_is_masked(api: Api) -> None:
    await api.create_product("FAULT-1")
    async with api.backend.db.write_engine.begin() as connection:
        await connection.execute(sa.text("ALTER TABLE video RENAME TO video_away"))
    try:
        body = await api.post("{ products { edges { node { sku videos { id } } } } }")
    finally:
        async with api.backend.db.write_engine.begin() as connection:
            await connection.execute(sa.text("ALTER TABLE video_away RENAME TO video"))
    assert body["data"] is None
    messages = [error["message"] for error in body["errors"]]
    assert messages == ["Internal server error."]
    shown = str(body["errors"]).lower()
    assert "select" not in shown and "table" not in shown and "traceback" not in shown


async def test_validation_errors_are_not_masked(api: Api) -> None:
    body = await api.post("{ products { edges { node { nope } } } }")
    assert "nope" in body["errors"][0]["message"]


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
