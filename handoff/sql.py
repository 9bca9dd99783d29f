"""Pre-built SQL for the statements every answered message runs (the bot turn's claim and reply,
the outbox's claim and its records of a send).

tortoise builds each query anew on every call (its query builder costs the event loop a few
hundred microseconds per statement under load, the largest share of handoff's own time per
message in a profile of `benchmarks/hot_path.py`); these statements are written once, in one text
for both stores, and rendered per dialect on first use.

A statement's text uses `?` for its parameters, and `{clock}` for the database's current time
plus a number of seconds given as the next parameter (`db.clock`'s expression: PostgreSQL's
`statement_timestamp()`, SQLite's text form of UTC time, which compares with stored datetimes).
Parameters are passed as Python values: datetimes, booleans and numbers as the drivers take them
(tortoise registers SQLite's datetime adapter), JSON columns as text.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from handoff import db

M = TypeVar("M", bound=Model)

# `{clock}` with its offset as a parameter: a date modifier on SQLite, seconds on PostgreSQL.
_CLOCK = {"sqlite": db.clock_sql("sqlite", "?"), "postgres": db.clock_sql("postgres", "? * interval '1 second'")}


class Seconds(float):
    """A `{clock}` offset; SQLite takes it as a date modifier, PostgreSQL as a number."""


class Statement:
    """One SQL statement, rendered for a dialect once (see the module docstring)."""

    def __init__(self, sql: str) -> None:
        self.sql = " ".join(sql.split())
        self._rendered: dict[str, str] = {}

    def text(self, dialect: str) -> str:
        """The statement for `dialect` ("sqlite" or "postgres"): `$n` placeholders on PostgreSQL."""
        rendered = self._rendered.get(dialect)
        if rendered is None:
            rendered = self.sql.replace("{clock}", _CLOCK[dialect])
            if dialect == "postgres":
                numbers = iter(range(1, rendered.count("?") + 1))
                rendered = re.sub(r"\?", lambda _: f"${next(numbers)}", rendered)
            self._rendered[dialect] = rendered
        return rendered


def _prepared(statement: Statement, params: tuple[Any, ...], conn: BaseDBAsyncClient | None
              ) -> tuple[BaseDBAsyncClient, str, list[Any]]:
    conn = conn or connections.get("default")
    dialect = conn.capabilities.dialect
    if dialect == "sqlite":
        values = [f"{p:+.3f} seconds" if isinstance(p, Seconds) else p for p in params]
    else:
        values = [float(p) if isinstance(p, Seconds) else p for p in params]
    return conn, statement.text(dialect), values


async def execute(statement: Statement, *params: Any, conn: BaseDBAsyncClient | None = None) -> int:
    """Run an INSERT, UPDATE or DELETE on `conn` (else the context's connection: the current
    transaction's, if any); returns the rows it changed. Raises what the driver raises, as
    tortoise's exceptions."""
    conn, text, values = _prepared(statement, params, conn)
    changed, _ = await conn.execute_query(text, values)
    return changed


async def fetch(statement: Statement, *params: Any, conn: BaseDBAsyncClient | None = None) -> list[dict[str, Any]]:
    """Run a statement that returns rows (a SELECT, or a write with RETURNING); the rows as dicts."""
    conn, text, values = _prepared(statement, params, conn)
    return await conn.execute_query_dict(text, values)


def columns(model: type[Model], alias: str, prefix: str = "") -> str:
    """The SELECT list of every column of `model`'s table under `alias`, each named
    `<prefix><column>` (to read two tables' rows from one joined statement: `instance`)."""
    return ", ".join(f'{alias}."{column}" AS "{prefix}{column}"' for column in model._meta.fields_db_projection.values())


def instance(model: type[M], row: dict[str, Any], prefix: str = "") -> M:
    """The `model` instance of the columns of `row` named `<prefix><column>` (see `columns`)."""
    if prefix:
        row = {key[len(prefix):]: value for key, value in row.items() if key.startswith(prefix)}
    return model._init_from_db(**row)
