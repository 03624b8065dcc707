"""Search use case: filtered, faceted, paged search of the listed catalog."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

from services.common.errors import FieldViolation, InvalidArgument
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.product.domain.commands import SearchPage, SearchProducts, SortOrder
from services.product.domain.model import LISTED_STATES
from services.product.service_layer import validation
from services.product.service_layer.ports import CatalogSearch

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SearchResult:
    """A page of search results and the token of the next page ("" on the last)."""

    page: SearchPage
    next_page_token: str


def _bad_page_token() -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation("page_token", "does not belong to a search with these filters")]
    )


async def search_products(command: SearchProducts, *, catalog: CatalogSearch) -> SearchResult:
    """Search listed products; tokens carry an offset and a fingerprint of the filters."""
    limit = clamp_page_size(command.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    search = validation.validate_search(command)
    fingerprint = hashlib.sha256(json.dumps(asdict(search), sort_keys=True).encode()).hexdigest()[
        :16
    ]
    offset = 0
    after: tuple[int | float | str, ...] | None = None
    position = decode_page_token(command.page_token)
    if position is not None:
        if position.get("f") != fingerprint:
            raise _bad_page_token()
        raw_offset, raw_key = position.get("o"), position.get("k")
        if (
            isinstance(raw_offset, int)
            and raw_offset >= 0
            and search.sort_order is SortOrder.RELEVANCE
        ):
            offset = raw_offset
        elif isinstance(raw_key, list) and all(isinstance(v, int | float | str) for v in raw_key):
            after = tuple(raw_key)
        else:
            raise _bad_page_token()
    # One more than asked tells whether another page follows.
    page = await catalog.search(
        search, states=LISTED_STATES, offset=offset, limit=limit + 1, after=after
    )
    more = len(page.products) > limit
    page = replace(page, products=page.products[:limit], keys=page.keys[:limit])
    token = ""
    if more and search.sort_order is SortOrder.RELEVANCE:
        # Text scores cannot be compared across calls, so relevance pages by offset.
        token = encode_page_token({"o": offset + limit, "f": fingerprint})
    elif more:
        # Other orders page by the last key seen: inserts and deletes never shift a page.
        token = encode_page_token({"k": list(page.keys[-1]), "f": fingerprint})
    return SearchResult(page, token)
