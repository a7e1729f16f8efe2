"""The response check of the benchmark's HttpEventTrigger: never satisfied, so it keeps polling."""

from typing import Any


async def never(response: Any) -> bool:
    return False
