"""The agent side: desk operations, REST API, live stream, and agent-side integrations."""

from __future__ import annotations

from typing import Any

from handoff.desk.slack import SlackIntegration

INTEGRATIONS: tuple[Any, ...] = (SlackIntegration,)
