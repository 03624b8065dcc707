"""Recommendations: also bought (co-purchases), similar products, top-rated fallback."""

from __future__ import annotations

import re

from services.common.errors import Violations
from services.common.pagination import clamp_page_size
from services.product.domain.commands import ListRecommendations, RecommendationKind
from services.product.domain.model import LISTED_STATES, Product
from services.product.service_layer import validation
from services.product.service_layer.access import listed_product
from services.product.service_layer.ports import ProductRepository, PurchaseStore

DEFAULT_RECOMMENDATIONS = 10
MAX_RECOMMENDATIONS = 50
SIMILAR_CANDIDATES = 200
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = frozenset({"a", "an", "and", "the", "of", "for", "with", "to", "in", "on", "by"})


def _words(product: Product) -> set[str]:
    text = f"{product.title} {product.description}".lower()
    return {w for w in _WORD.findall(text) if w not in _STOP_WORDS and len(w) > 2}


def similarity(anchor: Product, other: Product) -> float:
    """How alike two products are: subcategory, shared attribute values and shared words."""
    score = 0.0
    if other.subcategory and other.subcategory == anchor.subcategory:
        score += 3.0
    shared = sum(
        1 for name, value in anchor.attributes.items() if other.attributes.get(name) == value
    )
    score += 1.0 * shared
    anchor_words, other_words = _words(anchor), _words(other)
    if anchor_words and other_words:
        score += 4.0 * len(anchor_words & other_words) / len(anchor_words | other_words)
    return score


async def list_recommendations(
    command: ListRecommendations, *, products: ProductRepository, purchases: PurchaseStore
) -> list[Product]:
    """Products related to a published one; never itself, never unpublished ones."""
    limit = clamp_page_size(
        command.page_size, default=DEFAULT_RECOMMENDATIONS, maximum=MAX_RECOMMENDATIONS
    )
    violations = Violations()
    validation.check_id(violations, command.product_id, "product_id")
    violations.raise_if_any()
    anchor = await listed_product(command.product_id, products)
    chosen: list[Product] = []
    seen = {anchor.product_id}

    def take(candidates: list[Product]) -> None:
        for product in candidates:
            if len(chosen) >= limit:
                return
            if product.is_published and product.product_id not in seen:
                seen.add(product.product_id)
                chosen.append(product)

    if command.kind in (RecommendationKind.DEFAULT, RecommendationKind.ALSO_BOUGHT):
        pairs = await purchases.also_bought(anchor.product_id, limit=limit * 3)
        found = await products.get_many([product_id for product_id, _ in pairs])
        take([found[product_id] for product_id, _ in pairs if product_id in found])
        if command.kind is RecommendationKind.ALSO_BOUGHT:
            return chosen
    if len(chosen) < limit:
        candidates = await products.in_category(
            anchor.category,
            states=LISTED_STATES,
            exclude=list(seen),
            limit=SIMILAR_CANDIDATES,
            by_rating=True,
        )
        scored = sorted(
            ((similarity(anchor, c), c) for c in candidates),
            key=lambda pair: (-pair[0], -pair[1].rating.average, pair[1].product_id),
        )
        take([product for score, product in scored if score > 0])
        if command.kind is RecommendationKind.DEFAULT:
            # The fallback: the best rated of the category, even if nothing is alike.
            take(candidates)
    return chosen
