"""Read a request body before it is authenticated without letting it cost unbounded memory.

A body is read as a stream, refused (413) the moment it passes its endpoint's cap (at once when
Content-Length already says so), and every body in flight draws on one shared byte budget: when
many large bodies arrive together, the ones that do not fit are refused (503) instead of buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request


class BodyTooLarge(Exception):
    """The body passed the endpoint's cap."""


class TooBusy(Exception):
    """The bytes already in flight leave no room for this body."""


class BodyBudget:
    """Bytes of unauthenticated bodies held in memory at once, across all requests.

    Only touched from the event loop, so a plain counter needs no lock.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_flight = 0

    def take(self, size: int) -> None:
        if self.in_flight + size > self.max_bytes:
            raise TooBusy
        self.in_flight += size

    def give_back(self, size: int) -> None:
        self.in_flight -= size


@asynccontextmanager
async def read_capped(request: Request, *, limit: int, budget: BodyBudget) -> AsyncIterator[bytes]:
    """`async with read_capped(...) as body:` the whole body, counted against `budget` until the
    block ends. Raises BodyTooLarge past `limit`, TooBusy when the budget is spent."""
    held = 0
    try:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                raise BodyTooLarge
            # Reserve what the sender announced before reading any of it.
            budget.take(int(declared))
            held = int(declared)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            if size > held:  # chunked, or more than announced
                budget.take(size - held)
                held = size
            chunks.append(chunk)
        yield b"".join(chunks)
    finally:
        budget.give_back(held)
