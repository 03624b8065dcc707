"""Encryption at rest of the order database: its sealed columns and the data-key command.

`python -m services.order.data_keys status|backfill|rotate [--new-data-key|--reencrypt]` with the
service's environment (ORDER_DATABASE_URL, ORDER_DATA_KEK); see the README.
"""

from __future__ import annotations

import sys

from services.common.sealed_rows import SealedColumn, main
from services.order.adapters.postgres.orders import SEALED_ADDRESS

SEALED_COLUMNS: tuple[SealedColumn, ...] = (SEALED_ADDRESS,)

if __name__ == "__main__":
    from services.order.adapters.postgres.unit_of_work import create_pool
    from services.order.config import Settings

    settings = Settings()
    sys.exit(
        main(
            service="order",
            open_pool=lambda: create_pool(
                str(settings.database_url), max_size=2, keyring=settings.data_keyring()
            ),
            columns=SEALED_COLUMNS,
        )
    )
