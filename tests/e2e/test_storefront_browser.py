"""The storefront and seller console (web/), as people use them: Debian's Chromium, headless.

The app is built in this session when web/dist is stale (npm ci + vite build, see
services/devmesh/webbuild.py) and served by the edge at `/`. Screenshots of the main pages
land in .mesh/test-artifacts/storefront/ (ignored by git), or under $MARKETPLACE_TEST_ARTIFACTS.
"""

from __future__ import annotations

import email
import email.policy
import gzip
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from services.devmesh import webbuild
from services.devmesh.mesh import Mesh
from services.devmesh.processes import REPO_ROOT
from tests.support.browser import chromium_browser
from tests.support.edge import (
    DEMO_PASSWORD,
    PAYOUT_HOLD_SECONDS,
    Account,
    create_product,
    login,
    new_seller,
    place_order,
    register,
)

ARTIFACTS = (
    Path(os.environ.get("MARKETPLACE_TEST_ARTIFACTS") or REPO_ROOT / ".mesh" / "test-artifacts")
    / "storefront"
)
PASSWORD = "storefront-passphrase-1"
# Budgets: what a buyer's first page load downloads (gzip), and the time to a usable page.
BUNDLE_BUDGET_BYTES = 120 * 1024
FIRST_LOAD_BUDGET_MS = 2_500
EXPECT_MS = 15_000


@pytest.fixture(scope="module")
def storefront(mesh: Mesh) -> str:
    """The edge's URL once web/dist is fresh (built here when it is not)."""
    if not webbuild.is_fresh() and shutil.which("npm") is None:
        # CI has Node (ci.yml sets it up), so there a missing npm is a failure, not a skip.
        message = "npm is missing: install Node.js 20 to build web/"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    webbuild.ensure_built()
    response = httpx.get(f"{mesh.edge_url}/", timeout=10)
    assert response.status_code == 200, response.text
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return mesh.edge_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium_browser() as running:
        yield running


@pytest.fixture(scope="module")
def buyer_browser(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture(scope="module")
def seller_browser(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context
    context.close()


@pytest.fixture(scope="module")
def second_seller(mesh: Mesh, edge: httpx.Client) -> Account:
    """A seller besides the demo one: registered, verified, given the role by the demo admin."""
    return new_seller(mesh, edge, password=PASSWORD)


def mail_link(mesh: Mesh, to: str, kind: str) -> str:
    """The link in the newest mail of `kind` to `to`, as the mail shows it."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for eml in sorted((Path(mesh.state_dir) / "mailbox").glob("*.eml"), reverse=True):
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            if message["To"] == to and message["X-Marketplace-Kind"] == kind:
                body = message.get_body()
                assert body is not None
                found = re.search(r"(https?://\S+\?token=\S+)", body.get_content())
                assert found
                return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no {kind} mail to {to}")


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, address: str, password: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_be_visible(
        timeout=EXPECT_MS
    )


def add_to_basket(page: Page, base: str, title: str, token: str) -> None:
    page.get_by_role("searchbox", name="Search products").fill(token)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title, timeout=EXPECT_MS)
    page.get_by_role("button", name="Add to basket").click()
    expect(page.get_by_role("status").filter(has_text="Added 1")).to_be_visible()


def cart_lines(edge: httpx.Client, buyer: Account) -> dict[str, int]:
    """The buyer's server-side cart as the API reads it: quantity by product id."""
    cart = edge.get("/v1/cart", headers=buyer.headers)
    assert cart.status_code == 200, cart.text
    return {line["productId"]: line["quantity"] for line in cart.json().get("items", [])}


def test_a_buyer_signs_up_verifies_checks_out_and_watches_the_order_ship(
    mesh: Mesh,
    edge: httpx.Client,
    storefront: str,
    seller: Account,
    second_seller: Account,
    buyer_browser: BrowserContext,
    seller_browser: BrowserContext,
) -> None:
    token = uuid.uuid4().hex[:8]
    first = create_product(edge, seller, stock=5, price=30)
    second = create_product(edge, second_seller, stock=5, price=12)
    for product in (first, second):
        renamed = edge.patch(
            f"/v1/products/{product['productId']}",
            params={"updateMask": "title"},
            headers=(seller if product is first else second_seller).headers,
            json={"title": f"{product['title']} {token}", "etag": product["etag"]},
        )
        assert renamed.status_code == 200, renamed.text
        product["title"] = renamed.json()["title"]

    page = buyer_browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(storefront)
    expect(page.get_by_role("heading", name="Shop by category")).to_be_visible(timeout=EXPECT_MS)
    shot(page, "home")

    # Sign up, then the mailed link verifies the address.
    suffix = uuid.uuid4().hex[:8]
    address = f"shopper-{suffix}@example.org"
    page.get_by_role("link", name="Sign up").click()
    page.get_by_label("Email").fill(address)
    page.get_by_label("Username").fill(f"shopper_{suffix}")
    page.get_by_label("Your name").fill("Shopper")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your mailbox")).to_be_visible(timeout=EXPECT_MS)
    page.goto(mail_link(mesh, address, "verify_email"))
    expect(page.locator("#status")).to_have_attribute("data-outcome", "ok", timeout=EXPECT_MS)
    sign_in(page, storefront, address, PASSWORD)

    # Search, and one product of each seller into the basket: the cart on the server.
    page.get_by_role("searchbox", name="Search products").fill(token)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="2 products")).to_be_visible(
        timeout=EXPECT_MS
    )
    shot(page, "search")
    add_to_basket(page, storefront, first["title"], token)
    shot(page, "product")
    add_to_basket(page, storefront, second["title"], token)
    buyer = login(edge, address, PASSWORD)
    assert cart_lines(edge, buyer) == {first["productId"]: 1, second["productId"]: 1}
    page.get_by_role("link", name=re.compile("^Basket")).click()
    basket = page.get_by_role("table", name="Basket")
    expect(basket.get_by_role("link", name=first["title"])).to_be_visible(timeout=EXPECT_MS)
    expect(basket.get_by_role("link", name=second["title"])).to_be_visible()
    # A quantity changed in the basket is changed on the server.
    page.get_by_label(f"Quantity of {second['title']}").fill("2")
    expect(page.get_by_role("link", name=re.compile("^Basket")).first).to_have_text(
        "Basket (3)", timeout=EXPECT_MS
    )
    assert cart_lines(edge, buyer) == {first["productId"]: 1, second["productId"]: 2}
    shot(page, "basket")
    page.get_by_role("link", name="Check out").click()

    # An address for the book, then the order with the sandbox card that is approved.
    page.get_by_text("Add an address", exact=True).click()
    page.get_by_label("Recipient").fill("Ada Shopper")
    page.get_by_label("Street and number").fill("1 Main Street")
    page.get_by_label("City").fill("Springfield")
    page.get_by_label("Postal code").fill("12345")
    page.get_by_label("Country code").fill("US")
    page.get_by_role("button", name="Save the address").click()
    expect(page.get_by_role("radio", name=re.compile("Ada Shopper"))).to_be_checked(
        timeout=EXPECT_MS
    )
    shot(page, "checkout")
    page.get_by_role("button", name="Place order").click()
    status = page.get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "ORDER_STATUS_PAID", timeout=EXPECT_MS)
    order_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_role("link", name=re.compile("^Basket")).first).to_have_text("Basket (0)")
    # Two sellers: each one's part (items, shipping, tax, total) as the order carries it.
    parts = page.get_by_role("table", name="Per seller")
    for seller_id, items in ((seller.user_id, "$30.00"), (second_seller.user_id, "$24.00")):
        expect(parts.locator(f"tr[data-seller-id='{seller_id}']")).to_contain_text(items)
    assert cart_lines(edge, buyer) == {}

    # The first seller ships from the console in their own browser; the buyer's page follows.
    console = seller_browser.new_page()
    sign_in(console, storefront, "seller@example.com", DEMO_PASSWORD)
    console.goto(f"{storefront}/sell/orders")
    ship = console.locator(f"form[data-order-id='{order_id}']")
    ship.get_by_label("Tracking number").fill(f"JD{suffix}")
    shot(console, "seller-orders")
    ship.get_by_role("button", name="Mark as shipped").click()
    expect(ship).to_have_count(0, timeout=EXPECT_MS)
    expect(status).to_have_attribute("data-status", "ORDER_STATUS_FULFILLING", timeout=EXPECT_MS)
    shipped = edge.post(
        f"/v1/orders/{order_id}:ship",
        headers=second_seller.headers,
        json={"carrier": "UPS", "trackingNumber": f"1Z{suffix}"},
    )
    assert shipped.status_code == 200, shipped.text
    # No reload: the page learns it from the :watch stream.
    expect(status).to_have_attribute("data-status", "ORDER_STATUS_SHIPPED", timeout=EXPECT_MS)
    shot(page, "order-live")
    assert errors == []


def test_a_declined_card_says_so_and_leaves_the_basket(
    edge: httpx.Client, storefront: str, seller: Account, buyer_browser: BrowserContext
) -> None:
    token = uuid.uuid4().hex[:8]
    product = create_product(edge, seller, stock=3, price=20)
    address, _ = register(edge, PASSWORD)
    buyer = login(edge, address, PASSWORD)
    page = buyer_browser.new_page()
    sign_in(page, storefront, address, PASSWORD)
    page.goto(f"{storefront}/products/{product['productId']}")
    page.get_by_role("button", name="Add to basket").click()
    expect(page.get_by_role("status").filter(has_text="Added 1")).to_be_visible(timeout=EXPECT_MS)
    page.goto(f"{storefront}/basket/checkout")
    page.get_by_text("Add an address", exact=True).click()
    page.get_by_label("Recipient").fill("Bo Buyer")
    page.get_by_label("Street and number").fill(f"{token} Side Street")
    page.get_by_label("City").fill("Shelbyville")
    page.get_by_label("Country code").fill("US")
    page.get_by_role("button", name="Save the address").click()
    expect(page.get_by_role("radio", name=re.compile("Bo Buyer"))).to_be_checked(timeout=EXPECT_MS)
    page.get_by_label("Card").select_option("tok_chargeDeclined")
    page.get_by_role("button", name="Place order").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(re.compile("card was declined"), timeout=EXPECT_MS)
    expect(alert).to_have_attribute("data-reason", "PAYMENT_DECLINED")
    assert "{" not in alert.inner_text()
    shot(page, "checkout-declined")
    # The cart is as it was, on the server and on a freshly loaded basket page.
    assert cart_lines(edge, buyer) == {product["productId"]: 1}
    page.reload()
    expect(page.get_by_role("link", name=re.compile("^Basket"))).to_have_text(
        "Basket (1)", timeout=EXPECT_MS
    )
    page.get_by_role("link", name=re.compile("^Basket")).click()
    expect(page.get_by_role("link", name=product["title"])).to_be_visible(timeout=EXPECT_MS)

    # The seller lowers the price: the basket says so in words, with both prices.
    repriced = edge.patch(
        f"/v1/products/{product['productId']}",
        params={"updateMask": "listPrice"},
        headers=seller.headers,
        json={"listPrice": {"currencyCode": "USD", "units": "15"}, "etag": product["etag"]},
    )
    assert repriced.status_code == 200, repriced.text
    page.reload()
    expect(page.get_by_text(re.compile(r"price changed.*\$20\.00, now \$15\.00"))).to_be_visible(
        timeout=EXPECT_MS
    )
    shot(page, "basket-price-changed")
    page.get_by_role("button", name=re.compile("^Remove")).click()
    expect(page.get_by_text("Your basket is empty.")).to_be_visible(timeout=EXPECT_MS)
    assert cart_lines(edge, buyer) == {}


def test_a_seller_creates_publishes_and_meets_an_edit_conflict(
    edge: httpx.Client, storefront: str, seller: Account, seller_browser: BrowserContext
) -> None:
    title = f"Console Kettle {uuid.uuid4().hex[:8]}"
    page = seller_browser.new_page()
    sign_in(page, storefront, "seller@example.com", DEMO_PASSWORD)
    page.get_by_role("link", name="Sell").click()
    page.get_by_role("link", name="New listing").click()
    page.get_by_label("Title").fill(title)
    page.get_by_label("Description").fill("Pours well.")
    page.get_by_role("combobox", name=re.compile("^Category")).select_option("home-kitchen")
    page.get_by_label("Subcategory").select_option("bedding")
    page.get_by_label("List price (USD)").fill("42.50")
    page.get_by_label("Initial stock").fill("7")
    page.get_by_role("button", name="Create the listing").click()
    state = page.get_by_test_id("listing-state")
    expect(state).to_have_text("Draft", timeout=EXPECT_MS)
    subcategory = page.get_by_role("combobox", name=re.compile("^Subcategory"))
    expect(subcategory).to_have_value("bedding", timeout=EXPECT_MS)
    page.get_by_role("button", name="Publish").click()
    expect(state).to_have_text("Published", timeout=EXPECT_MS)
    shot(page, "seller-listing")

    # Someone else saves first: the console shows the version that won.
    product_id = page.url.rsplit("/", 1)[-1]
    current = edge.get(f"/v1/products/{product_id}").json()
    other = edge.patch(
        f"/v1/products/{product_id}",
        params={"updateMask": "title"},
        headers=seller.headers,
        json={"title": f"{title} (edited elsewhere)", "etag": current["etag"]},
    )
    assert other.status_code == 200, other.text
    page.get_by_label("Title").fill(f"{title} v2")
    page.get_by_role("button", name="Save changes").click()
    conflict = page.get_by_role("complementary", name="The current version")
    expect(conflict).to_contain_text("(edited elsewhere)", timeout=EXPECT_MS)
    expect(page.get_by_role("alert").first).to_contain_text("changed this listing")
    shot(page, "seller-conflict")

    # In the shop, the published listing is found by search.
    page.get_by_role("searchbox", name="Search products").fill(title)
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.get_by_role("link", name=f"{title} (edited elsewhere)")).to_be_visible(
        timeout=EXPECT_MS
    )


def test_the_edge_serves_the_app_with_caching_and_leaves_the_api_alone(
    edge: httpx.Client, storefront: str
) -> None:
    page = edge.get("/orders/some-order")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    asset = re.search(r'src="(/assets/[^"]+\.js)"', page.text)
    assert asset
    script = edge.get(asset.group(1))
    assert script.status_code == 200
    assert "immutable" in script.headers["cache-control"]
    assert "x-storefront-cache-control" not in script.headers
    assert edge.get("/assets/gone-0000.js").status_code == 404
    # The API keeps its own answers: JSON errors and no caching.
    unknown = edge.get("/v1/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/json")
    assert edge.get("/v1/categories").headers["cache-control"] == "no-store"


def test_budgets_bundle_size_and_first_load(storefront: str, browser: Browser) -> None:
    index = (webbuild.WEB / "dist" / "index.html").read_text()
    initial = re.findall(r'(?:src|href)="/(assets/[^"]+)"', index)
    sizes = {
        name: len(gzip.compress((webbuild.WEB / "dist" / name).read_bytes(), 9)) for name in initial
    }
    total = sum(sizes.values())
    (ARTIFACTS / "budgets.txt").write_text(f"initial bundle gzip bytes: {total} {sizes}\n")
    assert total <= BUNDLE_BUDGET_BYTES, sizes

    # A new context: empty cache, the whole app over loopback.
    context = browser.new_context()
    try:
        page = context.new_page()
        started = time.perf_counter()
        page.goto(storefront)
        expect(page.locator(".categories li").first).to_be_visible(timeout=EXPECT_MS)
        usable_ms = (time.perf_counter() - started) * 1000
        load_ms = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
    finally:
        context.close()
    with (ARTIFACTS / "budgets.txt").open("a") as out:
        out.write(f"first load: load event {load_ms:.0f} ms, categories shown {usable_ms:.0f} ms\n")
    assert usable_ms <= FIRST_LOAD_BUDGET_MS


def test_a_lost_checkout_answer_is_retried_with_the_same_key_into_one_order(
    edge: httpx.Client, storefront: str, seller: Account, buyer_browser: BrowserContext
) -> None:
    product = create_product(edge, seller, stock=3, price=18)
    address, _ = register(edge, PASSWORD)
    buyer = login(edge, address, PASSWORD)
    added = edge.post(
        "/v1/cart/items",
        headers=buyer.headers,
        json={"productId": product["productId"], "quantity": 1},
    )
    assert added.status_code == 200, added.text
    saved = edge.post(
        "/v1/users/me/addresses",
        headers=buyer.headers,
        json={
            "recipientName": "Lou Lost",
            "line1": "2 Packet Lane",
            "city": "Springfield",
            "countryCode": "US",
            "isDefaultShipping": True,
        },
    )
    assert saved.status_code == 200, saved.text

    page = buyer_browser.new_page()
    keys: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers.get("idempotency-key", ""))
        if len(keys) == 1:
            answer = route.fetch()  # the server takes the checkout and answers...
            assert answer.status == 200, answer.text()
            route.abort("connectionreset")  # ...and the answer never reaches the page
        else:
            route.continue_()

    page.route(re.compile(r"/v1/cart:checkout$"), lose_the_first_answer)
    sign_in(page, storefront, address, PASSWORD)
    page.goto(f"{storefront}/basket/checkout")
    expect(page.get_by_role("radio", name=re.compile("Lou Lost"))).to_be_checked(timeout=EXPECT_MS)
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_role("alert")).to_have_text(
        re.compile("could not be reached"), timeout=EXPECT_MS
    )
    # The order went through on the server, so the cart is empty now; the page still offers
    # the retry of that very attempt instead of "your basket is empty".
    retry = page.get_by_role("button", name="Try again")
    expect(retry).to_be_visible()
    expect(page.get_by_role("table", name="Basket")).to_contain_text(product["title"])
    shot(page, "checkout-retry")
    retry.click()
    status = page.get_by_test_id("order-status")
    expect(status).to_have_attribute("data-status", "ORDER_STATUS_PAID", timeout=EXPECT_MS)

    assert len(keys) == 2 and keys[0] and keys[0] == keys[1], keys
    orders = edge.get("/v1/orders", headers=buyer.headers)
    assert orders.status_code == 200, orders.text
    placed = orders.json().get("orders", [])
    assert [o["orderId"] for o in placed] == [page.url.rsplit("/", 1)[-1]]
    assert stock_left(edge, product["productId"]) == 2  # one unit bought, once


def stock_left(edge: httpx.Client, product_id: str) -> int:
    """Units of the product available now."""
    return int(edge.get(f"/v1/products/{product_id}").json()["stockAvailable"])


def test_a_return_is_asked_approved_received_and_refunded_in_the_browser(
    edge: httpx.Client,
    storefront: str,
    seller: Account,
    buyer_browser: BrowserContext,
    seller_browser: BrowserContext,
) -> None:
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    product = create_product(edge, seller, stock=4, price=40)
    address, _ = register(edge, PASSWORD)
    buyer = login(edge, address, PASSWORD)
    placed = place_order(edge, buyer, product["productId"], quantity=2)
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    shipped = edge.post(
        f"/v1/orders/{order_id}:ship",
        headers=seller.headers,
        json={"carrier": "DHL", "trackingNumber": "RET-1"},
    )
    assert shipped.status_code == 200, shipped.text
    delivered = edge.post(f"/v1/orders/{order_id}:deliver", headers=admin.headers, json={})
    assert delivered.status_code == 200, delivered.text

    # The buyer asks to send one of the two back, from the order page.
    page = buyer_browser.new_page()
    sign_in(page, storefront, address, PASSWORD)
    page.goto(f"{storefront}/orders/{order_id}")
    form = page.get_by_role("form", name="Return items")
    form.get_by_label(f"Quantity to return of {product['title']}").fill("1")
    form.get_by_label("Why are you returning them?").select_option("Arrived damaged")
    form.get_by_label("Details for the seller (optional)").fill("The shade is cracked.")
    form.get_by_role("button", name="Ask for a return").click()
    expect(form.get_by_role("status")).to_contain_text("sent to the seller", timeout=EXPECT_MS)
    state = page.get_by_role("table", name="Returns of this order").get_by_test_id("return-state")
    expect(state).to_have_attribute("data-state", "RETURN_STATE_REQUESTED", timeout=EXPECT_MS)
    shot(page, "order-return-requested")
    listed = edge.get(f"/v1/orders/{order_id}/returns", headers=buyer.headers).json()["returns"]
    assert [(r["items"][0]["quantity"], r["reason"]) for r in listed] == [
        ("1", "Arrived damaged: The shade is cracked.")
    ]

    # The seller finds it in the console: a refusal needs a reason, said in words; then
    # approve with a note, and mark received, which refunds.
    console = seller_browser.new_page()
    sign_in(console, storefront, "seller@example.com", DEMO_PASSWORD)
    console.get_by_role("link", name="Sell").click()
    console.get_by_role("link", name="Returns").click()
    card = console.locator(f"form[data-return-id='{listed[0]['returnId']}']")
    expect(card).to_be_visible(timeout=EXPECT_MS)
    card.get_by_role("button", name="Reject").click()
    expect(card.get_by_role("alert")).to_contain_text("Say why you reject", timeout=EXPECT_MS)
    card.get_by_label(re.compile("^Note for the buyer")).fill("Send it to 1 Depot Road.")
    card.get_by_role("button", name="Approve").click()
    card_state = card.get_by_test_id("return-state")
    expect(card_state).to_have_attribute("data-state", "RETURN_STATE_APPROVED", timeout=EXPECT_MS)
    shot(console, "seller-returns")
    card.get_by_role("button", name="Mark as received and refund").click()
    expect(card_state).to_have_attribute("data-state", "RETURN_STATE_REFUNDED", timeout=EXPECT_MS)
    expect(card).to_contain_text("$40.00")

    # The buyer's page follows the order live and shows the refund, without a reload.
    expect(state).to_have_attribute("data-state", "RETURN_STATE_REFUNDED", timeout=EXPECT_MS)
    expect(page.get_by_text("Seller's note: Send it to 1 Depot Road.")).to_be_visible()
    expect(page.get_by_test_id("order-status")).to_have_attribute(
        "data-status", "ORDER_STATUS_PARTIALLY_REFUNDED"
    )
    shot(page, "order-return-refunded")
    order = edge.get(f"/v1/orders/{order_id}", headers=buyer.headers).json()
    assert order["payment"]["refundedAmount"]["units"] in (40, "40")
    # What is left to return is the other unit only.
    form = page.get_by_role("form", name="Return items")
    quantity = form.get_by_label(f"Quantity to return of {product['title']}")
    expect(quantity).to_have_attribute("max", "1")


def test_a_seller_lists_their_listings_in_every_state_with_filters_and_pages(
    mesh: Mesh, edge: httpx.Client, storefront: str, browser: Browser
) -> None:
    owner = new_seller(mesh, edge, password=PASSWORD)
    token = uuid.uuid4().hex[:6]

    def listing(title: str, *, stock: int, publish: bool) -> str:
        created = edge.post(
            "/v1/products",
            headers=owner.headers,
            json={
                "product": {
                    "title": f"{title} {token}",
                    "category": "home-kitchen",
                    "subcategory": "bedding",
                    "listPrice": {"currencyCode": "USD", "units": 9},
                    "initialStock": stock,
                },
                "publish": publish,
            },
        )
        assert created.status_code == 200, created.text
        return str(created.json()["productId"])

    for n in range(20):
        listing(f"Plenty {n:02d}", stock=5, publish=True)
    draft = listing("Draft Duvet", stock=3, publish=False)
    scarce = listing("Scarce Sheet", stock=1, publish=True)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, storefront, owner.email, PASSWORD)
        page.get_by_role("link", name="Sell").click()
        table = page.get_by_role("table", name="Your listings")
        rows = table.locator("tbody tr")
        # Every state, newest first, 20 a page: the draft is there, and a second page follows.
        expect(rows).to_have_count(20, timeout=EXPECT_MS)
        expect(table.locator(f"tr[data-product-id='{draft}']")).to_have_attribute(
            "data-state", "PRODUCT_STATE_DRAFT"
        )
        shot(page, "seller-listings")
        pages = page.get_by_role("navigation", name="Pages of your listings")
        pages.get_by_role("button", name="Next").click()
        expect(rows).to_have_count(2, timeout=EXPECT_MS)
        expect(table).to_contain_text(f"Plenty 00 {token}")
        pages.get_by_role("button", name="Previous").click()
        expect(rows).to_have_count(20, timeout=EXPECT_MS)

        filters = page.get_by_role("form", name="Filter your listings")
        filters.get_by_label("State").select_option("PRODUCT_STATE_DRAFT")
        filters.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1, timeout=EXPECT_MS)
        expect(rows.first).to_have_attribute("data-product-id", draft)
        expect(pages.get_by_role("button", name="Next")).to_be_disabled()

        filters.get_by_label("State").select_option("")
        filters.get_by_label("At most this many in stock").fill("1")
        filters.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1, timeout=EXPECT_MS)
        expect(rows.first).to_have_attribute("data-product-id", scarce)

        # A draft opens from the list, with no id to type.
        filters.get_by_label("At most this many in stock").fill("")
        filters.get_by_label("State").select_option("PRODUCT_STATE_DRAFT")
        filters.get_by_role("button", name="Show").click()
        table.get_by_role("link", name=f"Draft Duvet {token}").click()
        expect(page.get_by_test_id("listing-state")).to_have_text("Draft", timeout=EXPECT_MS)
    finally:
        context.close()


def test_a_refused_refresh_signs_the_tab_out_cleanly(
    edge: httpx.Client, storefront: str, buyer_browser: BrowserContext
) -> None:
    address, _ = register(edge, PASSWORD)
    page = buyer_browser.new_page()
    sign_in(page, storefront, address, PASSWORD)
    page.goto(f"{storefront}/orders")
    expect(page.get_by_role("heading", name="Your orders")).to_be_visible(timeout=EXPECT_MS)
    assert page.evaluate("sessionStorage.getItem('marketplace.refresh')")
    # The session ends elsewhere: every refresh token of the account is revoked.
    other = login(edge, address, PASSWORD)
    ended = edge.post("/v1/auth/logout:all", headers=other.headers, json={})
    assert ended.status_code == 200, ended.text
    # A reload has no access token (it lives in memory): the refresh is refused, and the tab
    # is signed out with a sentence, not stuck half signed in.
    page.reload()
    expect(page.get_by_role("status").filter(has_text="Your session ended")).to_be_visible(
        timeout=EXPECT_MS
    )
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Sign out"))).to_have_count(0)
    assert page.evaluate("sessionStorage.getItem('marketplace.refresh')") is None
    # Signing in again clears the notice and works.
    page.get_by_label("Email").fill(address)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your orders")).to_be_visible(timeout=EXPECT_MS)


def test_a_sale_shows_pending_then_an_admin_pays_it_out_in_the_consoles(
    mesh: Mesh, edge: httpx.Client, storefront: str, browser: Browser
) -> None:
    seller = new_seller(mesh, edge, password=PASSWORD)
    product = create_product(edge, seller, stock=3, price=40)
    address, _ = register(edge, PASSWORD)
    buyer = login(edge, address, PASSWORD)
    seller_context = browser.new_context(viewport={"width": 1280, "height": 900})
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        # The seller's page is open before the sale, so the refresh right after the capture
        # reads it inside the short holding period the e2e mesh sets.
        page = seller_context.new_page()
        sign_in(page, storefront, seller.email, PASSWORD)
        page.get_by_role("link", name="Sell").click()
        page.get_by_role("link", name="Balance & payouts").click()
        expect(page.get_by_role("heading", name="Balance & payouts")).to_be_visible()
        expect(page.get_by_text("No money has moved yet")).to_be_visible(timeout=EXPECT_MS)
        placed = place_order(edge, buyer, product["productId"], quantity=1)
        assert placed.status_code == 200, placed.text
        page.get_by_role("button", name="Refresh").click()
        # 40.00 sold less the default 10 % commission: 36.00 pending, nothing available yet.
        usd = page.get_by_role("table", name="Your balance").locator("tr[data-currency='USD']")
        expect(usd.get_by_test_id("pending")).to_have_text("$36.00", timeout=EXPECT_MS)
        expect(usd.get_by_test_id("available")).to_have_text("$0.00")
        ledger = page.get_by_role("table", name="Ledger")
        expect(ledger.locator("tr[data-kind='LEDGER_ENTRY_KIND_SALE']")).to_contain_text(
            "+$40.00", timeout=EXPECT_MS
        )
        commission = ledger.locator("tr[data-kind='LEDGER_ENTRY_KIND_COMMISSION']")
        expect(commission).to_contain_text("Commission")
        expect(commission).to_contain_text("-$4.00")
        expect(page.get_by_text("No payouts yet.")).to_be_visible()
        shot(page, "seller-balance-pending")

        # Once the sale is past the holding period, an admin runs payouts (after confirming).
        time.sleep(PAYOUT_HOLD_SECONDS)
        deadline = time.monotonic() + EXPECT_MS / 1000
        while True:
            balance = edge.get("/v1/sellers/me/balance", headers=seller.headers).json()
            if balance["balances"][0]["available"].get("units") in (36, "36"):
                break
            assert time.monotonic() < deadline, balance
            time.sleep(0.2)
        console = admin_context.new_page()
        sign_in(console, storefront, "admin@example.com", DEMO_PASSWORD)
        console.get_by_role("link", name="Admin").click()
        console.get_by_role("navigation", name="Admin").get_by_role("link", name="Payouts").click()
        console.get_by_role("button", name="Run payouts").click()
        confirm = console.get_by_role("group", name=re.compile("Pay out every seller"))
        expect(confirm).to_be_visible()
        # Keyboard: the confirmation takes the focus on "Cancel", and Enter backs out.
        expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()
        console.keyboard.press("Enter")
        expect(confirm).to_be_hidden()
        expect(console.get_by_role("button", name="Run payouts")).to_be_focused()
        assert not edge.get("/v1/sellers/me/payouts", headers=seller.headers).json()["payouts"]
        console.get_by_role("button", name="Run payouts").click()
        console.get_by_role("button", name="Yes, pay out now").click()
        result = console.get_by_role("status", name="Payout run result")
        paid = result.locator(f"li[data-seller-id='{seller.user_id}']")
        expect(paid).to_contain_text("$36.00", timeout=EXPECT_MS)
        # Sellers are named, not just numbered (every e2e account is "E2E Buyer").
        expect(paid).to_contain_text("E2E Buyer")
        listed = console.get_by_role("table", name="All payouts").locator(
            f"tr[data-seller-id='{seller.user_id}']"
        )
        expect(listed).to_contain_text("$36.00", timeout=EXPECT_MS)
        shot(console, "admin-payouts")

        # The seller's page shows the payout, its ledger entry and nothing left to pay.
        page.get_by_role("button", name="Refresh").click()
        expect(usd.get_by_test_id("available")).to_have_text("$0.00", timeout=EXPECT_MS)
        expect(usd.get_by_test_id("pending")).to_have_text("$0.00")
        payouts = page.get_by_role("table", name="Your payouts")
        expect(payouts.locator("tbody tr")).to_have_count(1, timeout=EXPECT_MS)
        expect(payouts).to_contain_text("$36.00")
        expect(ledger.locator("tr[data-kind='LEDGER_ENTRY_KIND_PAYOUT']")).to_contain_text(
            "-$36.00"
        )
        shot(page, "seller-balance-paid-out")
    finally:
        seller_context.close()
        admin_context.close()


def test_tax_and_shipping_set_in_the_consoles_show_on_the_buyers_order(
    mesh: Mesh, edge: httpx.Client, storefront: str, browser: Browser
) -> None:
    # Norway: no other test taxes or ships there, and the rate is deleted at the end.
    country = "NO"
    seller = new_seller(mesh, edge, password=PASSWORD)
    product = create_product(edge, seller, stock=5, price=40)
    address, _ = register(edge, PASSWORD)
    buyer = login(edge, address, PASSWORD)
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900})
    seller_context = browser.new_context(viewport={"width": 1280, "height": 900})
    buyer_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        # The admin sets 12.5 % for Norway (typed as a percentage, stored as 1250 basis points).
        console = admin_context.new_page()
        sign_in(console, storefront, "admin@example.com", DEMO_PASSWORD)
        console.get_by_role("link", name="Admin").click()
        admin_nav = console.get_by_role("navigation", name="Admin")
        admin_nav.get_by_role("link", name="Tax rates").click()
        expect(console.get_by_role("heading", name="Tax rates")).to_be_visible()
        form = console.get_by_role("form", name="Set a tax rate")
        form.get_by_label("Country code").fill(country.lower())
        form.get_by_label("Rate (%)").fill("12.5")
        form.get_by_role("button", name="Save the rate").click()
        expect(console.get_by_role("status").filter(has_text="taxed at 12.5%")).to_be_visible(
            timeout=EXPECT_MS
        )
        row = console.get_by_role("table", name="Tax rates").locator(
            f"tr[data-country='{country}']"
        )
        expect(row.get_by_test_id("rate")).to_have_text("12.5%", timeout=EXPECT_MS)
        admin = login(edge, "admin@example.com", DEMO_PASSWORD)
        rates = edge.get("/v1/taxRates", headers=admin.headers).json()["taxRates"]
        assert {"countryCode": country, "basisPoints": 1250} in [
            {"countryCode": r["countryCode"], "basisPoints": r["basisPoints"]} for r in rates
        ]
        shot(console, "admin-tax-rates")

        # The seller's shipping: 5.00 by default, and to Norway 3.00 per order plus 1.50 per item.
        page = seller_context.new_page()
        sign_in(page, storefront, seller.email, PASSWORD)
        page.get_by_role("link", name="Sell").click()
        page.get_by_role("link", name="Shipping").click()
        shipping = page.get_by_role("form", name="Shipping rates")
        expect(shipping).to_be_visible(timeout=EXPECT_MS)
        expect(shipping.get_by_label("Currency")).to_have_value("USD")
        default = shipping.get_by_role("group", name=re.compile("^Default rate"))
        default.get_by_label("Flat fee per order").fill("5")
        shipping.get_by_role("button", name="Add a country").click()
        rate = shipping.get_by_role("group", name="Country rate 1")
        rate.get_by_label("Country code").fill(country)
        rate.get_by_label("Flat fee per order").fill("3")
        rate.get_by_label("Fee per item").fill("1.50")
        shipping.get_by_role("button", name="Save the shipping rates").click()
        expect(
            page.get_by_role("status").filter(has_text="shipping rates are saved")
        ).to_be_visible(timeout=EXPECT_MS)
        # The form shows the profile as the server now has it.
        expect(
            shipping.get_by_role("group", name="Country rate 1").get_by_label("Fee per item")
        ).to_have_value("1.50", timeout=EXPECT_MS)
        profile = edge.get("/v1/sellers/me/shippingProfile", headers=seller.headers).json()
        assert profile["currencyCode"] == "USD"
        assert profile["defaultRate"]["flatFee"]["units"] in (5, "5")
        [norway] = profile["countryRates"]
        assert norway["countryCode"] == country
        assert (norway["perItemFee"]["units"], norway["perItemFee"]["nanos"]) in (
            (1, 500_000_000),
            ("1", 500_000_000),
        )
        shot(page, "seller-shipping")

        # The buyer: the basket says shipping and tax come at checkout; the order has them.
        added = edge.post(
            "/v1/cart/items",
            headers=buyer.headers,
            json={"productId": product["productId"], "quantity": 2},
        )
        assert added.status_code == 200, added.text
        shop = buyer_context.new_page()
        sign_in(shop, storefront, address, PASSWORD)
        shop.get_by_role("link", name=re.compile("^Basket")).click()
        expect(shop.get_by_role("table", name="Basket")).to_be_visible(timeout=EXPECT_MS)
        expect(shop.get_by_text("Shipping and tax are calculated at checkout")).to_be_visible()
        shop.get_by_role("link", name="Check out").click()
        shop.get_by_text("Add an address", exact=True).click()
        shop.get_by_label("Recipient").fill("Nora Buyer")
        shop.get_by_label("Street and number").fill("1 Karl Johans gate")
        shop.get_by_label("City").fill("Oslo")
        shop.get_by_label("Postal code").fill("0154")
        shop.get_by_label("Country code").fill(country)
        shop.get_by_role("button", name="Save the address").click()
        expect(shop.get_by_role("radio", name=re.compile("Nora Buyer"))).to_be_checked(
            timeout=EXPECT_MS
        )
        shop.get_by_role("button", name="Place order").click()
        status = shop.get_by_test_id("order-status")
        expect(status).to_have_attribute("data-status", "ORDER_STATUS_PAID", timeout=EXPECT_MS)
        order_id = shop.url.rsplit("/", 1)[-1]
        order = edge.get(f"/v1/orders/{order_id}", headers=buyer.headers).json()

        def dollars(money: dict[str, object]) -> str:
            cents = (
                int(str(money.get("units", 0))) * 100
                + int(str(money.get("nanos", 0))) // 10_000_000
            )
            return f"${cents // 100:,}.{cents % 100:02d}"

        # 2 x 40.00 = 80.00; shipping 3.00 + 2 x 1.50 = 6.00; tax 12.5 % of 86.00 = 10.75.
        assert [dollars(order[k]) for k in ("subtotal", "shippingTotal", "taxTotal", "total")] == [
            "$80.00",
            "$6.00",
            "$10.75",
            "$96.75",
        ]
        expect(shop.get_by_test_id("order-subtotal")).to_have_text(dollars(order["subtotal"]))
        expect(shop.get_by_test_id("order-shipping")).to_have_text(dollars(order["shippingTotal"]))
        expect(shop.get_by_test_id("order-tax")).to_have_text(dollars(order["taxTotal"]))
        expect(shop.get_by_test_id("order-total")).to_have_text(dollars(order["total"]))
        # One seller: no per-seller table.
        expect(shop.get_by_role("table", name="Per seller")).to_have_count(0)
        shot(shop, "order-shipping-tax")

        # The admin deletes the rate, after an in-page confirmation that starts on "Keep it".
        row.get_by_role("button", name=f"Delete the tax rate of {country}").click()
        confirm = row.get_by_role("group", name=f"Delete the tax rate of {country}?")
        expect(confirm.get_by_role("button", name="Keep it")).to_be_focused()
        console.keyboard.press("Enter")
        expect(confirm).to_be_hidden()
        expect(row.get_by_role("button", name=f"Delete the tax rate of {country}")).to_be_focused()
        row.get_by_role("button", name=f"Delete the tax rate of {country}").click()
        row.get_by_role("button", name="Yes, delete").click()
        expect(console.get_by_role("status").filter(has_text="taxed at zero")).to_be_visible(
            timeout=EXPECT_MS
        )
        expect(row).to_have_count(0, timeout=EXPECT_MS)
        rates = edge.get("/v1/taxRates", headers=admin.headers).json().get("taxRates", [])
        assert country not in [r["countryCode"] for r in rates]
        # The placed order keeps the tax it was priced with.
        again = edge.get(f"/v1/orders/{order_id}", headers=buyer.headers).json()
        assert again["taxTotal"] == order["taxTotal"]
    finally:
        edge.delete(
            f"/v1/taxRates/{country}",
            headers=login(edge, "admin@example.com", DEMO_PASSWORD).headers,
        )
        admin_context.close()
        seller_context.close()
        buyer_context.close()


def test_a_buyer_downloads_their_data_and_deletes_the_account(
    edge: httpx.Client, storefront: str, browser: Browser
) -> None:
    address, user_id = register(edge, PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        sign_in(page, storefront, address, PASSWORD)
        page.get_by_role("link", name="Account").click()
        expect(page.get_by_role("heading", name="Your data", exact=True)).to_be_visible(
            timeout=EXPECT_MS
        )

        # The export: gathered from the API, offered as a JSON file.
        page.get_by_role("button", name="Gather my data").click()
        link = page.get_by_role("link", name=re.compile("^Download your data"))
        expect(link).to_be_visible(timeout=EXPECT_MS)
        with page.expect_download() as downloading:
            link.click()
        download = downloading.value
        assert download.suggested_filename.startswith("marketplace-data-")
        assert download.suggested_filename.endswith(".json")
        exported = json.loads(Path(download.path()).read_text())
        assert exported["account"]["email"] == address
        assert exported["account"]["userId"] == user_id
        shot(page, "account-your-data")

        # Deletion: a wrong password is refused in words and deletes nothing.
        form = page.get_by_role("form", name="Delete your account")
        delete = form.get_by_role("button", name="Delete my account")
        form.get_by_label("Your current password").fill("not-the-password-1")
        expect(delete).to_be_disabled()
        form.get_by_label("I understand my account is deleted for good").check()
        delete.click()
        expect(form.get_by_role("alert")).to_contain_text(
            "That is not your current password.", timeout=EXPECT_MS
        )
        assert login(edge, address, PASSWORD).user_id == user_id
        form.get_by_label("Your current password").fill(PASSWORD)
        delete.click()
        expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible(
            timeout=EXPECT_MS
        )
        expect(page.get_by_role("link", name="Sign in")).to_be_visible()
        shot(page, "account-deleted")

        # The account is gone: signing in is refused, in the browser and over the API.
        page.goto(f"{storefront}/signin")
        page.get_by_label("Email").fill(address)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text(
            "The email address or password is not right", timeout=EXPECT_MS
        )
        refused = edge.post("/v1/auth/login", json={"email": address, "password": PASSWORD})
        assert refused.status_code == 401, refused.text
        assert errors == []
    finally:
        context.close()
