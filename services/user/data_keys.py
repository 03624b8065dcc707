"""Encryption at rest of the user database: its sealed columns and the data-key command.

`python -m services.user.data_keys status|backfill|rotate [--new-data-key|--reencrypt]` with the
service's environment (USER_DATABASE_URL, USER_DATA_KEK); see the README.
"""

from __future__ import annotations

import sys

from services.common.sealed_rows import SealedColumn, main
from services.user.adapters.postgres.addresses import SEALED as SEALED_ADDRESS
from services.user.adapters.postgres.users import SEALED_PHONE

SEALED_COLUMNS: tuple[SealedColumn, ...] = (SEALED_PHONE, SEALED_ADDRESS)

if __name__ == "__main__":
    from services.user.adapters.postgres.pool import create_pool
    from services.user.config import Settings

    settings = Settings()
    sys.exit(
        main(
            service="user",
            open_pool=lambda: create_pool(
                str(settings.database_url), keyring=settings.data_keyring(), max_size=2
            ),
            columns=SEALED_COLUMNS,
        )
    )
