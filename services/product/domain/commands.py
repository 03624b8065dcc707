"""Commands the product use cases carry out (with the caller inside), and the search query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.common.identity import Caller
from services.common.money import Money
from services.product.domain.model import (
    AttributeValue,
    LifecycleAction,
    Product,
    ProductState,
    ReservationLine,
)


@dataclass(frozen=True)
class Viewer:
    """Who reads: a signed-in user (possibly an admin) or nobody."""

    user_id: str | None = None
    is_admin: bool = False


@dataclass(frozen=True)
class ParseProblem:
    """A request field the mapper could not even read, reported with the other violations."""

    field: str
    description: str


@dataclass(frozen=True)
class CreateProduct:
    """Create a listing for the calling seller, as a draft or published at once."""

    title: str
    description: str
    category: str
    subcategory: str
    attributes: Mapping[str, AttributeValue | None]
    list_price: Money | None
    sale_price: Money | None
    initial_stock: int
    image_urls: tuple[str, ...]
    publish: bool
    parse_problems: tuple[ParseProblem, ...] = ()
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class GetProduct:
    """Return one product the viewer may see."""

    product_id: str
    viewer: Viewer


@dataclass(frozen=True)
class BatchGetProducts:
    """Return the products among `product_ids` the viewer may see, in the order asked."""

    product_ids: tuple[str, ...]
    viewer: Viewer


class SortOrder(StrEnum):
    """How search results are ordered."""

    DEFAULT = "default"  # relevance with a query, newest without
    RELEVANCE = "relevance"
    PRICE_ASCENDING = "price_ascending"
    PRICE_DESCENDING = "price_descending"
    NEWEST = "newest"
    RATING = "rating"


@dataclass(frozen=True)
class SearchProducts:
    """Search published products; the page token continues a search with the same filters."""

    query: str = ""
    category: str = ""
    subcategory: str = ""
    seller_id: str = ""
    min_price_minor: int = 0
    max_price_minor: int = 0
    attribute_filters: tuple[str, ...] = ()
    in_stock_only: bool = False
    min_rating: float = 0.0
    sort_order: SortOrder = SortOrder.DEFAULT
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class SearchFilter:
    """A validated search: what to match and how to order it, without the page."""

    query: str = ""
    category: str = ""
    subcategory: str = ""
    seller_id: str = ""
    min_price_minor: int = 0
    max_price_minor: int = 0
    attributes: tuple[tuple[str, str], ...] = ()
    in_stock_only: bool = False
    min_rating: float = 0.0
    sort_order: SortOrder = SortOrder.NEWEST


@dataclass(frozen=True)
class FacetCount:
    """How many matching products carry one value of a field."""

    value: str
    count: int


@dataclass(frozen=True)
class SearchPage:
    """One page of search results with the total and the facets of the whole match."""

    products: tuple[Product, ...]
    total_size: int
    facets: Mapping[str, tuple[FacetCount, ...]] = field(default_factory=dict)
    # Where each product sits in the sort order, as stored: the cursor after it.
    keys: tuple[tuple[int | float | str, ...], ...] = ()


@dataclass(frozen=True)
class ReserveInventory:
    """Reserve every line for an order, or none of them."""

    order_id: str
    lines: tuple[ReservationLine, ...]
    # The checkout attempt, the same across a client's retries; "" for none.
    checkout_id: str = ""


@dataclass(frozen=True)
class CommitReservation:
    """Turn an order's reservation into a sale."""

    order_id: str


@dataclass(frozen=True)
class ReleaseReservation:
    """Return an order's reserved units to available stock."""

    order_id: str


@dataclass(frozen=True)
class UpdateProduct:
    """Change the fields named in `paths` of a listing last read at `etag`."""

    product_id: str
    etag: str
    paths: tuple[str, ...]
    title: str = ""
    description: str = ""
    category: str = ""
    subcategory: str = ""
    attributes: Mapping[str, AttributeValue | None] = field(default_factory=dict)
    list_price: Money | None = None
    sale_price: Money | None = None
    image_urls: tuple[str, ...] = ()
    parse_problems: tuple[ParseProblem, ...] = ()
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class ChangeLifecycle:
    """Publish, unpublish or archive a listing."""

    product_id: str
    action: LifecycleAction
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class ListCategories:
    """List the category tree, or the children of one category."""

    parent_id: str = ""


@dataclass(frozen=True)
class CreateCategory:
    """Add a node to the category tree."""

    category_id: str
    parent_id: str
    display_name: str
    attribute_names: tuple[str, ...] = ()
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class UpdateCategory:
    """Change the fields named in `paths` of a category."""

    category_id: str
    paths: tuple[str, ...]
    display_name: str = ""
    attribute_names: tuple[str, ...] = ()
    parent_id: str = ""
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class DeleteCategory:
    """Remove a category without products or subcategories."""

    category_id: str
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class GetInventory:
    """Return a product's stock figure."""

    product_id: str
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class AdjustInventory:
    """Restock or correct a product's on-hand units, with the reason for the ledger."""

    product_id: str
    delta: int
    reason: str
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class ListLedgerEntries:
    """Page through a product's recorded stock changes."""

    product_id: str
    page_size: int = 0
    page_token: str = ""
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class CreateDiscount:
    """Schedule a percentage or fixed discount on a product."""

    product_id: str
    start_time: datetime | None
    end_time: datetime | None
    percent_off: int = 0
    amount_off: Money | None = None
    parse_problems: tuple[ParseProblem, ...] = ()
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class DeleteDiscount:
    """Remove a discount from a product."""

    product_id: str
    discount_id: str
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class ListReviews:
    """Page through a product's visible reviews."""

    product_id: str
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class CreateReview:
    """Write the caller's review of a product."""

    product_id: str
    rating: int
    title: str = ""
    body: str = ""
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class UpdateReview:
    """Edit the fields named in `paths` of the caller's review."""

    product_id: str
    review_id: str
    paths: tuple[str, ...]
    rating: int = 0
    title: str = ""
    body: str = ""
    caller: Caller = field(kw_only=True)


@dataclass(frozen=True)
class ReviewAction:
    """Delete, hide or reply to one review."""

    product_id: str
    review_id: str
    text: str = ""  # the reply, or why the review is hidden
    caller: Caller = field(kw_only=True)


class RecommendationKind(StrEnum):
    """The relation recommendations follow."""

    DEFAULT = "default"  # also-bought, then similar, then top-rated in the category
    ALSO_BOUGHT = "also_bought"
    SIMILAR = "similar"


@dataclass(frozen=True)
class ListRecommendations:
    """Recommend products related to one product."""

    product_id: str
    kind: RecommendationKind = RecommendationKind.DEFAULT
    page_size: int = 0


@dataclass(frozen=True)
class ListSellerProducts:
    """Page through one seller's own products, in every state or the ones asked."""

    seller_id: str
    states: tuple[ProductState, ...] = ()
    category: str = ""
    max_available: int | None = None
    page_size: int = 0
    page_token: str = ""
    parse_problems: tuple[ParseProblem, ...] = ()
    caller: Caller = field(kw_only=True)
