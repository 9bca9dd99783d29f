"""Counting the SQL statements the ORM sends (tests that a path costs what it should)."""

from __future__ import annotations

import logging


class Statements(logging.Handler):
    """The SQL statements the ORM sends while active (its `tortoise.db_client` debug log), in
    order, and how many."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []
        self._logger = logging.getLogger("tortoise.db_client")

    @property
    def count(self) -> int:
        return len(self.statements)

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and len(record.args) == 2:  # "<sql>: <values>"
            if "live_event" not in str(record.args[0]):  # the hub's own reads of the event log, on its clock
                self.statements.append(str(record.args[0]))

    def __enter__(self) -> Statements:
        self._level = self._logger.level
        self._logger.setLevel(logging.DEBUG)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)
