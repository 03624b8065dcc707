"""Product documents cached in Redis, kept fresh by revision, and skipped while Redis is down.

Beside each document the cache keeps its rendered view (the serialized API message with what
a reader needs to tell whether it still holds), written in the same script as the document,
so a view can never be older than the document it sits beside.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, cast

import bson
import structlog
from bson.codec_options import CodecOptions
from bson.errors import InvalidBSON
from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.product.adapters.mongo.schema import Collection

log = structlog.get_logger("product.cache")

type Document = dict[str, Any]
# Renders a document as the view a cache hit serves; b"" when it has none.
type Renderer = Callable[[Document], bytes]

_CODEC: CodecOptions[Document] = CodecOptions(tz_aware=True)

# Stores a document only when it is newer than the cached one. A reader that fetched an old
# revision before a write cannot overwrite the newer copy the writer put after the write,
# which is what makes a read after a write never stale.
_PUT_IF_NEWER = """
local current = redis.call('HGET', KEYS[1], 'rev')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'doc', ARGV[2], 'view', ARGV[4])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""


def _hget(redis: Redis, key: str, field: str) -> Awaitable[bytes | None]:
    # redis-py types its commands for both clients; the asyncio one always awaits.
    return cast(Awaitable[bytes | None], redis.hget(key, field))


class ProductCache:
    """A revision-guarded cache of product documents in Redis.

    Every Redis failure is swallowed: the caller falls back to MongoDB. After a failure the
    cache is bypassed for `retry_after_seconds`, so a dead Redis costs one short timeout per
    period rather than one per call. Writes made while Redis was unreachable could not update
    it, so the first use after an outage purges every cached product before trusting it.
    """

    def __init__(
        self,
        redis: Redis | None,
        *,
        ttl_seconds: int = 300,
        retry_after_seconds: float = 1.0,
        prefix: str = "product:doc:",
        render: Renderer | None = None,
    ) -> None:
        self._redis = redis
        self._render = render
        self._ttl = ttl_seconds
        self._retry_after = retry_after_seconds
        self._prefix = prefix
        self._bypass_until = 0.0
        self._needs_purge = False

    def _key(self, product_id: str) -> str:
        return self._prefix + product_id

    async def _usable(self) -> Redis | None:
        if self._redis is None or time.monotonic() < self._bypass_until:
            return None
        if self._needs_purge:
            try:
                await self._purge(self._redis)
            except (RedisError, OSError) as error:
                self._failed("purge", error)
                return None
            self._needs_purge = False
            log.info("product_cache_recovered")
        return self._redis

    async def _purge(self, redis: Redis) -> None:
        batch: list[Any] = []
        async for key in redis.scan_iter(match=self._prefix + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await redis.unlink(*batch)
                batch = []
        if batch:
            await redis.unlink(*batch)

    def _failed(self, operation: str, error: BaseException) -> None:
        if not self._needs_purge:
            log.warning("product_cache_unavailable", operation=operation, error=repr(error))
        self._bypass_until = time.monotonic() + self._retry_after
        self._needs_purge = True

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Document]:
        """The cached documents among `product_ids`; misses and failures are left out."""
        redis = await self._usable()
        if redis is None or not product_ids:
            return {}
        try:
            if len(product_ids) == 1:
                # One command needs no pipeline and its extra buffering.
                raw = [await _hget(redis, self._key(product_ids[0]), "doc")]
            else:
                async with redis.pipeline(transaction=False) as pipe:
                    for product_id in product_ids:
                        pipe.hget(self._key(product_id), "doc")
                    raw = await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed("get", error)
            return {}
        found: dict[str, Document] = {}
        for product_id, data in zip(product_ids, raw, strict=True):
            if data is None:
                continue
            try:
                found[product_id] = bson.decode(data, codec_options=_CODEC)
            except InvalidBSON:
                continue  # an unreadable entry is a miss; the refill overwrites it
        return found

    async def put(self, docs: Iterable[Document]) -> None:
        """Cache `docs` unless a newer revision of each is cached already."""
        docs = list(docs)
        redis = await self._usable()
        if redis is None or not docs:
            return
        try:
            if len(docs) == 1:
                # The refill of a single read's miss: one command needs no pipeline.
                await cast(Awaitable[Any], redis.eval(_PUT_IF_NEWER, 1, *self._put_args(docs[0])))
            else:
                async with redis.pipeline(transaction=False) as pipe:
                    for doc in docs:
                        pipe.eval(_PUT_IF_NEWER, 1, *self._put_args(doc))
                    await pipe.execute()
        except (RedisError, OSError) as error:
            self._failed("put", error)

    def _put_args(self, doc: Document) -> tuple[str, int, bytes, int, bytes]:
        """The key and arguments of _PUT_IF_NEWER for `doc`."""
        return (
            self._key(str(doc["_id"])),
            int(doc.get("revision", 0)),
            bson.encode(doc),
            self._ttl,
            self._render(doc) if self._render is not None else b"",
        )

    async def view(self, product_id: str) -> bytes | None:
        """The cached view of a product in one Redis command; None on a miss or a failure."""
        redis = await self._usable()
        if redis is None:
            return None
        try:
            raw = await _hget(redis, self._key(product_id), "view")
        except (RedisError, OSError) as error:
            self._failed("get", error)
            return None
        return bytes(raw) if raw else None

    async def forget(self, product_ids: Sequence[str]) -> None:
        """Drop cached copies; used when a fresh copy could not be read."""
        redis = await self._usable()
        if redis is None or not product_ids:
            return
        try:
            await redis.unlink(*(self._key(p) for p in product_ids))
        except (RedisError, OSError) as error:
            self._failed("forget", error)


class ProductDocs:
    """Reads of product documents through the cache, and its refresh after every write."""

    def __init__(self, products: Collection, cache: ProductCache) -> None:
        self._products = products
        self._cache = cache

    async def get(self, product_id: str) -> Document | None:
        """The product document, from the cache when it holds it."""
        return (await self.get_many([product_id])).get(product_id)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Document]:
        """The existing product documents among `product_ids`, by id."""
        found = await self._cache.get_many(product_ids)
        missing = [p for p in product_ids if p not in found]
        if missing:
            fetched = await self._products.find({"_id": {"$in": missing}}).to_list()
            await self._cache.put(fetched)
            found.update((str(doc["_id"]), doc) for doc in fetched)
        return found

    async def refresh(self, *product_ids: str) -> None:
        """Re-read products just written and cache them, so later reads see the write."""
        if not product_ids:
            return
        fetched = await self._products.find({"_id": {"$in": list(product_ids)}}).to_list()
        await self._cache.put(fetched)

    async def written(self, doc: Document | None) -> None:
        """Cache a document a write returned (find_one_and_update with the new version)."""
        if doc is not None:
            await self._cache.put([doc])
