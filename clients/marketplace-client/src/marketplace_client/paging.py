"""Async iterators over the paged lists of the API (page_token / next_page_token)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Protocol


class Page(Protocol):
    """A list response: one page and the token of the next ("" on the last page)."""

    @property
    def next_page_token(self) -> str:
        """The token for the next page."""
        ...


async def iterate_pages[P: Page, T](
    fetch: Callable[[str], Awaitable[P]], items: Callable[[P], Iterable[T]]
) -> AsyncIterator[T]:
    """Yield every item of every page, fetching the next page only when it is needed.

    Args:
        fetch: Calls the list RPC with the given page_token ("" for the first page).
        items: The items of one page.

    Yields:
        The items, in the server's order.
    """
    token = ""
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        token = page.next_page_token
        if not token:
            return
