"""Whether the service's dependencies answer."""
import asyncio

from rtserver.context import Context

CHECK_TIMEOUT = 2.0  # a health probe must answer quickly even when a dependency hangs


async def check(ctx: Context) -> dict[str, bool]:
    mysql, redis = await asyncio.gather(_answers(ctx.db.ping()), _answers(ctx.redis.ping()))
    return {"mysql": mysql, "redis": redis}


async def _answers(probe) -> bool:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT)
        return True
    except Exception:
        return False
