"""Retry delays and the "run again after a failure" loop, shared by every worker that retries.

Delays are seconds and grow exponentially with the attempt number (0 for the first retry):
`exponential(attempt, base, cap)` is `min(cap, base * 2**attempt)`; `full_jitter` draws
uniformly from [0, that] (the "full jitter" of https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/),
`spread` scatters a delay by ±`fraction`. A provider's Retry-After, when the caller has one,
is a floor the caller applies (`max(delay, retry_after)`).

`forever(step, ...)` awaits `step()` again and again until cancelled: a failure is logged and
retried after a pause, so a background subscription (Redis relay, hub follower) never dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import NoReturn

log = logging.getLogger(__name__)


def exponential(attempt: int, base: float, cap: float) -> float:
    """`base * 2**attempt` seconds, at most `cap`."""
    return min(cap, base * 2.0 ** min(attempt, 64))  # 2**64 * any base is past any cap


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Uniform in [0, exponential(attempt, base, cap)] seconds."""
    return (rng or random).uniform(0, exponential(attempt, base, cap))


def spread(delay: float, fraction: float = 0.2, rng: random.Random | None = None) -> float:
    """`delay` scattered uniformly within ±`fraction` of itself, so reconnecting clients do not
    all arrive at the same moment."""
    return delay * (rng or random).uniform(1 - fraction, 1 + fraction)


async def forever(step: Callable[[], Awaitable[object]], what: str, *, pause: float = 1.0,
                  recover: Callable[[], Awaitable[object]] | None = None,
                  logger: logging.Logger = log) -> NoReturn:
    """Await `step()` forever. When it raises (anything but cancellation), log `"<what> failed;
    retrying"` with the traceback, sleep `pause` seconds, await `recover()` if given (its own
    failure is ignored: the next step will fail and retry again) and run `step` again.
    Cancellation propagates at once."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed; retrying", what)
            await asyncio.sleep(pause)
            if recover is not None:
                with contextlib.suppress(Exception):
                    await recover()
