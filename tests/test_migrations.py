"""The committed migrations describe the models exactly: a model change without its migration fails."""

from __future__ import annotations

import subprocess
import sys

DETECT = """
import asyncio
from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector
from handoff.db import tortoise_config

async def main():
    config = tortoise_config("sqlite://:memory:")
    await Tortoise.init(config=config)
    try:
        writers = await MigrationAutodetector(Tortoise.apps, config["apps"]).changes()
        for writer in writers:
            print(writer.name, [type(op).__name__ for op in writer.operations])
    finally:
        await Tortoise.close_connections()

asyncio.run(main())
"""


def test_models_need_no_migration_that_is_not_committed() -> None:
    # in a fresh interpreter: the detector initialises tortoise's global state
    result = subprocess.run([sys.executable, "-c", DETECT], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"models changed without a migration: {result.stdout}"
