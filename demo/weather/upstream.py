"""A stand-in for a third-party weather API, served by the demo itself under /upstream/.

It answers like a real API would (JSON, a small delay), so the `http` resource
makes real HTTP requests over a real connection pool without any network.
"""

from __future__ import annotations

import asyncio
import zlib

from django.http import HttpRequest, JsonResponse


async def forecast(request: HttpRequest, city: str) -> JsonResponse:
    await asyncio.sleep(0.01)  # a remote API takes a moment
    seed = zlib.crc32(city.lower().encode())
    return JsonResponse(
        {"city": city, "temperature_c": seed % 35 - 10, "wind_ms": seed % 17, "source": "upstream"}
    )
