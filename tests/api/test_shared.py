"""``Shared``: one value per key, made once however many coroutines ask at the same time."""

from __future__ import annotations

import asyncio

from airflow_provider_housecallpro.api.shared import Shared


async def test_concurrent_askers_share_one_make() -> None:
    shared: Shared[str, object] = Shared()
    made: list[object] = []
    release = asyncio.Event()

    async def make() -> object:
        await release.wait()  # every asker is waiting before the value exists
        made.append(object())
        return made[-1]

    askers = [asyncio.create_task(shared.get("k", make)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    values = await asyncio.gather(*askers)
    assert len(made) == 1
    assert all(v is made[0] for v in values)
    assert await shared.get("k", make) is made[0]
    assert shared.values() == made


async def test_a_failed_make_fails_every_waiter_and_is_not_kept() -> None:
    shared: Shared[str, str] = Shared()
    release = asyncio.Event()
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await release.wait()
        raise RuntimeError("lookup failed")

    askers = [asyncio.create_task(shared.get("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*askers, return_exceptions=True)
    assert calls == 1
    assert all(isinstance(r, RuntimeError) for r in results)

    async def works() -> str:
        return "ok"

    assert await shared.get("k", works) == "ok"  # the next ask tries again


async def test_an_unusable_value_is_replaced_and_discard_forgets() -> None:
    shared: Shared[str, list[int]] = Shared()
    first, second = [1], [2]

    async def make_first() -> list[int]:
        return first

    async def make_second() -> list[int]:
        return second

    assert await shared.get("k", make_first) is first
    assert await shared.get("k", make_second, usable=lambda v: v is not first) is second
    shared.discard(second)
    assert shared.values() == []
    assert await shared.get("k", make_first) is first  # made again after the discard
