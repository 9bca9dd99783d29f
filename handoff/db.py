"""Database set-up: the tortoise config, migrations on start, and connection lifecycle."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.migrations.api import migrate as migrate_api


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The tortoise-orm config for one database URL (sqlite://path or postgres://...)."""
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": ["handoff.models"],
                "migrations": "handoff.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# `tortoise makemigrations` reads this (pyproject [tool.tortoise]).
TORTOISE_ORM = tortoise_config("sqlite://handoff.db")


async def migrate(database_url: str) -> None:
    """Apply the committed migrations to the database (creating its tables on first run)."""
    await migrate_api(config=tortoise_config(database_url))
    await Tortoise.close_connections()


async def connect(database_url: str) -> BaseDBAsyncClient:
    """Open the ORM's connections for the app."""
    # tortoise caches prepared INSERT statements per connection *name*, not per dialect:
    # an embedding process (or a test run) that moves from SQLite to PostgreSQL under the
    # same name would reuse "?" placeholders on asyncpg. Start from a clean cache.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url))
    return connections.get("default")


async def disconnect(client: BaseDBAsyncClient | None = None) -> None:
    """Close the ORM's connections, and `client` (what `connect` returned) by name.

    tortoise keeps connections in a context variable: a shutdown running in another task
    context than the start-up (aiohttp's cleanup can) would not see the pool it must close.
    """
    await Tortoise.close_connections()
    if client is not None:
        await client.close()
