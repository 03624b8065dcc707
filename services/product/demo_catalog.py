"""A fixed demo catalog the dev mesh creates through CreateProduct as the demo seller."""

from __future__ import annotations

from google.type import money_pb2
from marketplace.product.v1 import product_pb2

type Attributes = dict[str, str | float | bool]
type _Entry = tuple[str, str, str, str, int, int, int, Attributes]

# (category, subcategory, title, description, list price in cents, sale price in cents or 0,
#  initial stock, attributes). Plain data so the catalog is the same on every run.
# fmt: off
_CATALOG: list[_Entry] = [
    # electronics
    ("electronics", "headphones", "Aurora ANC Wireless Headphones", "Over-ear Bluetooth headphones with active noise cancelling and 30-hour battery.", 19999, 15999, 120, {"brand": "Aurora", "colour": "black", "battery_hours": 30.0, "wireless": True}),
    ("electronics", "headphones", "Pulse Sport Earbuds", "Sweat-resistant true wireless earbuds with ear hooks for running.", 7999, 0, 200, {"brand": "Pulse", "colour": "red", "battery_hours": 8.0, "wireless": True}),
    ("electronics", "headphones", "Studio Monitor Headphones", "Closed-back wired headphones tuned flat for mixing and recording.", 12900, 0, 45, {"brand": "Fidelis", "colour": "black", "wireless": False}),
    ("electronics", "speakers", "Boom Mini Bluetooth Speaker", "Pocket speaker, waterproof to IPX7, with a clip strap.", 3999, 2999, 150, {"brand": "Boom", "colour": "teal", "waterproof": True}),
    ("electronics", "speakers", "Hearth Smart Speaker", "Room-filling smart speaker with voice assistant and multi-room audio.", 9999, 0, 80, {"brand": "Hearth", "colour": "charcoal", "waterproof": False}),
    ("electronics", "chargers", "65W USB-C GaN Charger", "Compact two-port charger that powers a laptop and a phone at once.", 4599, 0, 180, {"brand": "Voltix", "watts": 65.0, "ports": 2.0}),
    ("electronics", "chargers", "Magnetic Wireless Charging Pad", "15W magnetic charging pad with braided cable.", 2999, 2499, 0, {"brand": "Voltix", "watts": 15.0, "colour": "white"}),
    ("electronics", "cameras", "Trailcam 4K Action Camera", "Stabilised 4K action camera with waterproof housing and two batteries.", 24999, 21999, 30, {"brand": "Trailcam", "resolution": "4K", "waterproof": True}),
    ("electronics", "keyboards", "Loom Mechanical Keyboard", "Tenkeyless mechanical keyboard with hot-swappable tactile switches.", 11900, 0, 60, {"brand": "Loom", "layout": "TKL", "switch": "tactile", "wireless": False}),
    ("electronics", "keyboards", "Drift Wireless Mouse", "Ergonomic wireless mouse with silent clicks and USB-C charging.", 3499, 0, 140, {"brand": "Drift", "colour": "grey", "wireless": True}),
    # apparel
    ("apparel", "sweaters", "Merino Crew Sweater", "Fine-gauge merino wool sweater, warm without the bulk.", 8900, 6900, 75, {"brand": "Northfold", "colour": "navy", "material": "merino wool", "size": "M"}),
    ("apparel", "sweaters", "Cable Knit Cardigan", "Chunky cotton cardigan with horn buttons.", 9900, 0, 40, {"brand": "Northfold", "colour": "oatmeal", "material": "cotton", "size": "L"}),
    ("apparel", "shirts", "Oxford Button-Down Shirt", "Classic oxford cloth shirt with a soft collar roll.", 5900, 0, 110, {"brand": "Harbor & Co", "colour": "light blue", "material": "cotton", "size": "M"}),
    ("apparel", "shirts", "Linen Camp Shirt", "Breezy short-sleeve linen shirt for summer days.", 6500, 4900, 0, {"brand": "Harbor & Co", "colour": "sand", "material": "linen", "size": "S"}),
    ("apparel", "t-shirts", "Organic Cotton Tee", "Heavyweight organic cotton T-shirt with a relaxed fit.", 2800, 0, 200, {"brand": "Common Thread", "colour": "white", "material": "organic cotton", "size": "M"}),
    ("apparel", "t-shirts", "Striped Breton Tee", "Long-sleeve striped tee in midweight jersey.", 3400, 2700, 90, {"brand": "Common Thread", "colour": "navy stripe", "material": "cotton", "size": "L"}),
    ("apparel", "jackets", "Packable Rain Jacket", "Waterproof, breathable shell that packs into its own pocket.", 12900, 9900, 55, {"brand": "Summitline", "colour": "yellow", "material": "nylon", "waterproof": True, "size": "M"}),
    ("apparel", "jackets", "Waxed Canvas Field Jacket", "Rugged waxed cotton jacket with corduroy collar.", 21900, 0, 20, {"brand": "Fieldworks", "colour": "olive", "material": "waxed cotton", "size": "L"}),
    ("apparel", "shoes", "Everyday Leather Sneakers", "Minimal white leather sneakers with a cushioned insole.", 11500, 0, 65, {"brand": "Stride", "colour": "white", "material": "leather", "size": "42"}),
    ("apparel", "shoes", "Trail Running Shoes", "Grippy trail runners with a rock plate and quick laces.", 13900, 11900, 35, {"brand": "Summitline", "colour": "orange", "material": "mesh", "size": "43"}),
    # home-kitchen
    ("home-kitchen", "cookware", "Cast Iron Skillet 26 cm", "Pre-seasoned cast iron skillet that goes from stove to oven.", 4900, 0, 100, {"brand": "Ironhearth", "material": "cast iron", "diameter_cm": 26.0, "dishwasher_safe": False}),
    ("home-kitchen", "cookware", "Stainless Steel Saucepan Set", "Three tri-ply saucepans with glass lids.", 15900, 12900, 25, {"brand": "Culina", "material": "stainless steel", "pieces": 3.0, "dishwasher_safe": True}),
    ("home-kitchen", "cookware", "Enamelled Dutch Oven", "5.5 litre enamelled cast iron Dutch oven for braises and bread.", 17900, 0, 0, {"brand": "Ironhearth", "colour": "cherry red", "material": "enamelled cast iron", "capacity_l": 5.5}),
    ("home-kitchen", "knives", "Chef's Knife 20 cm", "Forged German steel chef's knife with full tang.", 8900, 7400, 70, {"brand": "Culina", "material": "stainless steel", "blade_cm": 20.0}),
    ("home-kitchen", "knives", "Walnut End-Grain Cutting Board", "Thick end-grain walnut board that is kind to knife edges.", 6900, 0, 40, {"brand": "Woodgrain", "material": "walnut", "length_cm": 40.0}),
    ("home-kitchen", "coffee", "Pour-Over Coffee Kit", "Ceramic dripper, glass carafe and 100 paper filters.", 3900, 0, 130, {"brand": "Bloom", "material": "ceramic", "colour": "white"}),
    ("home-kitchen", "coffee", "Burr Coffee Grinder", "Conical burr grinder with 40 grind settings.", 12900, 9900, 45, {"brand": "Bloom", "colour": "matte black", "settings": 40.0}),
    ("home-kitchen", "coffee", "Insulated Travel Mug", "Vacuum-insulated steel mug that keeps coffee hot for 6 hours.", 2499, 0, 190, {"brand": "Trekware", "capacity_ml": 470.0, "colour": "sage"}),
    ("home-kitchen", "bedding", "Percale Cotton Sheet Set", "Crisp, cool percale sheets in long-staple cotton.", 11900, 0, 60, {"brand": "Restwell", "colour": "white", "material": "cotton", "size": "queen"}),
    ("home-kitchen", "bedding", "Washed Linen Duvet Cover", "Stone-washed linen duvet cover with coconut buttons.", 18900, 14900, 15, {"brand": "Restwell", "colour": "clay", "material": "linen", "size": "king"}),
    # books
    ("books", "fiction", "The Lighthouse Keeper's Daughter", "A novel of storms, secrets and a family on a remote island.", 1899, 1399, 85, {"author": "Mara Ellison", "format": "paperback", "pages": 384.0}),
    ("books", "fiction", "City of Quiet Engines", "A literary science fiction story about a city that stopped.", 2699, 0, 60, {"author": "Tomas Reyes", "format": "hardcover", "pages": 416.0}),
    ("books", "fiction", "Salt and Saffron", "Interwoven stories of three generations of cooks.", 1699, 0, 0, {"author": "Priya Nair", "format": "paperback", "pages": 312.0}),
    ("books", "non-fiction", "The Patient Gardener", "Growing a low-effort garden with native plants through the seasons.", 2499, 0, 70, {"author": "Helen Brooks", "format": "hardcover", "pages": 256.0}),
    ("books", "non-fiction", "Small Habits, Big Changes", "A practical guide to building routines that stick.", 2199, 1599, 150, {"author": "Daniel Osei", "format": "paperback", "pages": 288.0}),
    ("books", "cookbooks", "Weeknight Vegetables", "Fast vegetable-forward dinners in thirty minutes or less.", 2999, 0, 95, {"author": "Lena Park", "format": "hardcover", "pages": 240.0}),
    ("books", "cookbooks", "The Sourdough Year", "Baking naturally leavened bread through every season.", 3499, 2799, 40, {"author": "Marco Bellini", "format": "hardcover", "pages": 320.0}),
    ("books", "children", "The Fox Who Counted Stars", "A bedtime picture book about curiosity and the night sky.", 1499, 0, 120, {"author": "Ada Moreau", "format": "hardcover", "age_min": 3.0}),
    ("books", "children", "Robots at the Museum", "An illustrated chapter book adventure for early readers.", 999, 0, 80, {"author": "Sam Okafor", "format": "paperback", "age_min": 7.0}),
    # sports-outdoors
    ("sports-outdoors", "camping", "Two-Person Backpacking Tent", "Freestanding 1.6 kg tent with two doors and vestibules.", 27900, 23900, 18, {"brand": "Summitline", "capacity": 2.0, "weight_kg": 1.6, "colour": "green"}),
    ("sports-outdoors", "camping", "Down Sleeping Bag -5C", "Lightweight 650-fill down sleeping bag rated to minus five.", 21900, 0, 22, {"brand": "Summitline", "temperature_c": -5.0, "weight_kg": 0.9}),
    ("sports-outdoors", "camping", "LED Camp Lantern", "Rechargeable lantern with warm light and power-bank output.", 3499, 0, 160, {"brand": "Trekware", "lumens": 400.0, "waterproof": True}),
    ("sports-outdoors", "camping", "Titanium Camp Stove", "Ultralight canister stove that boils a litre in 3.5 minutes.", 5999, 4999, 0, {"brand": "Trekware", "material": "titanium", "weight_kg": 0.08}),
    ("sports-outdoors", "fitness", "Cork Yoga Mat", "Non-slip natural cork mat with a rubber base.", 6900, 0, 75, {"brand": "Flowform", "material": "cork", "thickness_mm": 5.0}),
    ("sports-outdoors", "fitness", "Adjustable Dumbbell Pair", "Dial-select dumbbells from 2 to 24 kg each.", 32900, 28900, 12, {"brand": "Forge", "max_kg": 24.0}),
    ("sports-outdoors", "fitness", "Speed Jump Rope", "Ball-bearing speed rope with adjustable steel cable.", 1999, 0, 200, {"brand": "Forge", "colour": "black"}),
    ("sports-outdoors", "cycling", "Commuter Bike Light Set", "USB-rechargeable front and rear lights, 800 lumens.", 4999, 3999, 90, {"brand": "Beam", "lumens": 800.0, "waterproof": True}),
    ("sports-outdoors", "cycling", "Road Cycling Helmet", "Ventilated helmet with MIPS protection.", 11900, 0, 30, {"brand": "Beam", "colour": "white", "size": "M"}),
    ("sports-outdoors", "cycling", "Frame Bag 4 L", "Waterproof frame bag for tools, snacks and a phone.", 3999, 0, 55, {"brand": "Trekware", "capacity_l": 4.0, "waterproof": True}),
    # beauty
    ("beauty", "skincare", "Hydrating Face Serum", "Hyaluronic acid serum for all skin types.", 3200, 0, 140, {"brand": "Dewlab", "volume_ml": 30.0, "vegan": True}),
    ("beauty", "skincare", "Mineral Sunscreen SPF 50", "Reef-friendly zinc sunscreen with no white cast.", 2400, 1900, 180, {"brand": "Dewlab", "spf": 50.0, "volume_ml": 50.0, "vegan": True}),
    ("beauty", "skincare", "Overnight Repair Cream", "Rich night cream with ceramides and squalane.", 4800, 0, 0, {"brand": "Botanica", "volume_ml": 50.0, "vegan": False}),
    ("beauty", "haircare", "Argan Oil Shampoo Bar", "Plastic-free shampoo bar with argan and coconut oil.", 1400, 0, 160, {"brand": "Botanica", "weight_g": 85.0, "vegan": True}),
    ("beauty", "haircare", "Ionic Hair Dryer", "Fast-drying ionic dryer with three heat settings.", 8900, 6900, 35, {"brand": "Aeris", "watts": 1800.0, "colour": "rose"}),
    ("beauty", "fragrance", "Cedar and Fig Eau de Parfum", "A warm woody fragrance with notes of fig leaf and cedar.", 9500, 0, 50, {"brand": "Maison Verte", "volume_ml": 50.0}),
    ("beauty", "fragrance", "Sea Salt Soy Candle", "Hand-poured soy candle with a 45-hour burn.", 2800, 2200, 120, {"brand": "Maison Verte", "burn_hours": 45.0, "vegan": True}),
    # toys-games
    ("toys-games", "board-games", "Harbour Traders Board Game", "A strategy game of trading and building ports for 2 to 5 players.", 4499, 0, 65, {"brand": "Tabletop Co", "players_max": 5.0, "age_min": 10.0}),
    ("toys-games", "board-games", "Word Tiles Party Game", "A fast word game for family nights.", 2499, 1899, 100, {"brand": "Tabletop Co", "players_max": 8.0, "age_min": 8.0}),
    ("toys-games", "board-games", "Cooperative Dungeon Quest", "A cooperative adventure game with campaign play.", 7999, 0, 0, {"brand": "Tabletop Co", "players_max": 4.0, "age_min": 12.0}),
    ("toys-games", "puzzles", "1000-Piece Mountain Lake Puzzle", "A jigsaw puzzle of an alpine lake at sunrise.", 2199, 0, 85, {"brand": "Piecework", "pieces": 1000.0, "age_min": 12.0}),
    ("toys-games", "puzzles", "Wooden Brain Teaser Set", "Six interlocking wooden puzzles of rising difficulty.", 2999, 2499, 60, {"brand": "Piecework", "material": "beech", "age_min": 8.0}),
    ("toys-games", "building", "Magnetic Building Tiles 60 pcs", "Translucent magnetic tiles for open-ended building.", 5999, 4999, 90, {"brand": "Brightblocks", "pieces": 60.0, "age_min": 3.0}),
    ("toys-games", "building", "Marble Run Construction Kit", "A 120-piece marble run with loops and a spiral tower.", 4999, 0, 40, {"brand": "Brightblocks", "pieces": 120.0, "age_min": 6.0}),
    ("toys-games", "outdoor-play", "Kids' Balance Bike", "Lightweight balance bike with an adjustable seat.", 8999, 0, 25, {"brand": "Littlewheel", "colour": "blue", "age_min": 2.0}),
    ("toys-games", "outdoor-play", "Giant Bubble Wand Kit", "Wands and concentrate for metre-wide bubbles.", 1599, 0, 150, {"brand": "Littlewheel", "age_min": 4.0}),
]
# fmt: on


def _usd(cents: int) -> money_pb2.Money:
    units, rest = divmod(cents, 100)
    return money_pb2.Money(currency_code="USD", units=units, nanos=rest * 10_000_000)


def _attribute(value: str | float | bool) -> product_pb2.AttributeValue:
    if isinstance(value, bool):
        return product_pb2.AttributeValue(bool_value=value)
    if isinstance(value, str):
        return product_pb2.AttributeValue(text_value=value)
    return product_pb2.AttributeValue(number_value=value)


def _image_url(category: str, index: int) -> str:
    return f"https://images.marketplace.example.com/demo/{category}/{index:03d}.jpg"


# Variants turn each base listing into a few sibling listings (another colour, size, format
# or pack), which is how real catalogs grow and what makes similar-product results useful.
_COLOURS = ("black", "white", "navy", "green", "red", "grey", "sand", "teal")
_SIZES = ("XS", "S", "M", "L", "XL")
_FORMATS = ("paperback", "hardcover", "ebook", "audiobook")
_EDITIONS = ("Twin Pack", "Travel Edition", "Pro Edition", "Gift Set")
VARIANTS_PER_PRODUCT = 3

_DISPLAY_NAMES = {
    "home-kitchen": "Home & Kitchen",
    "sports-outdoors": "Sports & Outdoors",
    "toys-games": "Toys & Games",
    "t-shirts": "T-Shirts",
    "non-fiction": "Non-Fiction",
    "board-games": "Board Games",
    "outdoor-play": "Outdoor Play",
}


def _variant(entry: _Entry, number: int) -> _Entry:
    """The `number`-th variant of a base listing: one attribute changed, price nudged."""
    category, subcategory, title, description, list_cents, sale_cents, stock, attrs = entry
    attrs = dict(attrs)
    seed = len(title) * 7 + number * 13

    def pick(palette: tuple[str, ...], current: object) -> str:
        # Consecutive numbers pick distinct labels, none equal to the base listing's.
        options = [label for label in palette if label != current]
        return options[(len(title) + number) % len(options)]

    if category == "apparel" and "size" in attrs and not str(attrs["size"]).isdigit():
        label = attrs["size"] = pick(_SIZES, attrs["size"])
    elif category == "books":
        label = attrs["format"] = pick(_FORMATS, attrs.get("format"))
    elif "colour" in attrs:
        label = attrs["colour"] = pick(_COLOURS, attrs["colour"])
    else:
        label = _EDITIONS[(number - 1) % len(_EDITIONS)]
        attrs["edition"] = label.lower()
    factor = (100 + (seed % 5) * 5 - 10) / 100  # from 90% to 110% of the base price
    new_list = max(int(list_cents * factor) // 100 * 100 - 1, 499)
    new_sale = 0
    if sale_cents and number % 2 == 0:
        new_sale = max(min(int(sale_cents * factor) // 100 * 100 - 1, new_list - 100), 199)
    new_stock = (stock + number * 37) % 201 if stock else 0
    return (
        category,
        subcategory,
        f"{title} ({label})",
        f"{description} This variant: {label}.",
        new_list,
        new_sale,
        new_stock,
        attrs,
    )


def _entries() -> list[_Entry]:
    base = list(_CATALOG)
    variants = [_variant(entry, n) for n in range(1, VARIANTS_PER_PRODUCT + 1) for entry in base]
    return base + variants


def demo_products() -> list[product_pb2.Product]:
    """The demo catalog as CreateProduct inputs, the same on every call.

    Returns:
        Some 280 products across 7 categories (each base listing and its variants), each
        with a subcategory, attributes, a USD list price, sometimes a sale price, and an
        initial stock from 0 to 200.
    """
    products: list[product_pb2.Product] = []
    for index, entry in enumerate(_entries()):
        category, subcategory, title, description, list_cents, sale_cents, stock, attrs = entry
        message = product_pb2.Product(
            title=title,
            description=description,
            category=category,
            subcategory=subcategory,
            attributes={name: _attribute(value) for name, value in attrs.items()},
            list_price=_usd(list_cents),
            initial_stock=stock,
            image_urls=[_image_url(category, index)],
        )
        if sale_cents:
            message.sale_price.CopyFrom(_usd(sale_cents))
        products.append(message)
    return products


def _display_name(slug: str) -> str:
    return _DISPLAY_NAMES.get(slug, slug.replace("-", " ").title())


def demo_categories() -> list[product_pb2.Category]:
    """The category tree of the demo catalog, parents before their children."""
    tree: dict[str, dict[str, set[str]]] = {}
    for category, subcategory, *_rest, attrs in _entries():
        tree.setdefault(category, {}).setdefault(subcategory, set()).update(attrs)
    categories: list[product_pb2.Category] = []
    for category, children in tree.items():
        shared = set.union(*children.values())
        categories.append(
            product_pb2.Category(
                category_id=category,
                display_name=_display_name(category),
                attribute_names=sorted(shared)[:30],
            )
        )
        categories.extend(
            product_pb2.Category(
                category_id=subcategory,
                parent_id=category,
                display_name=_display_name(subcategory),
                attribute_names=sorted(names)[:30],
            )
            for subcategory, names in children.items()
        )
    return categories


def demo_discount_percent(index: int) -> int:
    """The percentage off the demo seller runs on the index-th product now; 0 for none."""
    return (10, 0, 0, 20, 0, 0, 0, 15, 0, 0, 30, 0)[index % 12]


def demo_ratings(index: int) -> tuple[int, ...]:
    """The stars the demo reviewers give the index-th product; empty for none.

    Ratings lean towards the base listings and spread from 1 to 5, so averages, histograms,
    minimum-rating filters and the top-rated sort all have something to show.
    """
    if index % 3 == 2:
        return ()
    first = 1 + (index * 7 + 3) % 5
    second = 1 + (index * 11 + 4) % 5
    return (max(first, 2), second) if index % 2 else (first,)
