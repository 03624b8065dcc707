"""Every port the order service layer needs, one module per aggregate, all re-exported here.

Adapters implement them (services/order/adapters/); the service layer depends on these
protocols only, imported from this package: `from services.order.service_layer.ports import X`.
"""

from __future__ import annotations

from services.common.transaction import Transaction as Transaction
from services.order.service_layer.ports.buyers import Buyers as Buyers
from services.order.service_layer.ports.cart import Carts as Carts
from services.order.service_layer.ports.cart import CartUnitOfWork as CartUnitOfWork
from services.order.service_layer.ports.cart import CartUnitOfWorkFactory as CartUnitOfWorkFactory
from services.order.service_layer.ports.cart import Catalog as Catalog
from services.order.service_layer.ports.cart import CheckoutRecords as CheckoutRecords
from services.order.service_layer.ports.cart import OrderPlacer as OrderPlacer
from services.order.service_layer.ports.idempotency import IdempotencyKeys as IdempotencyKeys
from services.order.service_layer.ports.inventory import Inventory as Inventory
from services.order.service_layer.ports.inventory import PricedLine as PricedLine
from services.order.service_layer.ports.orders import OrderChanges as OrderChanges
from services.order.service_layer.ports.orders import OrderCodec as OrderCodec
from services.order.service_layer.ports.orders import Orders as Orders
from services.order.service_layer.ports.orders import ReservationReleases as ReservationReleases
from services.order.service_layer.ports.orders import Subscriptions as Subscriptions
from services.order.service_layer.ports.orders import UnitOfWork as UnitOfWork
from services.order.service_layer.ports.orders import UnitOfWorkFactory as UnitOfWorkFactory

# The payment gateway port answers with the domain's payment results, re-exported with it.
from services.order.service_layer.ports.payments import Authorization as Authorization
from services.order.service_layer.ports.payments import Capture as Capture
from services.order.service_layer.ports.payments import PaymentAttempts as PaymentAttempts
from services.order.service_layer.ports.payments import PaymentDeclined as PaymentDeclined
from services.order.service_layer.ports.payments import PaymentError as PaymentError
from services.order.service_layer.ports.payments import PaymentGateway as PaymentGateway
from services.order.service_layer.ports.payments import PaymentTimeout as PaymentTimeout
from services.order.service_layer.ports.payments import PaymentUnavailable as PaymentUnavailable
from services.order.service_layer.ports.payouts import Ledger as Ledger
from services.order.service_layer.ports.payouts import PayoutUnitOfWork as PayoutUnitOfWork
from services.order.service_layer.ports.payouts import (
    PayoutUnitOfWorkFactory as PayoutUnitOfWorkFactory,
)
from services.order.service_layer.ports.pricing import PricingRules as PricingRules
from services.order.service_layer.ports.pricing import PricingUnitOfWork as PricingUnitOfWork
from services.order.service_layer.ports.pricing import (
    PricingUnitOfWorkFactory as PricingUnitOfWorkFactory,
)
from services.order.service_layer.ports.reports import ReportRow as ReportRow
from services.order.service_layer.ports.reports import SalesReports as SalesReports
from services.order.service_layer.ports.returns import Returns as Returns
from services.order.service_layer.ports.returns import ReturnUnitOfWork as ReturnUnitOfWork
from services.order.service_layer.ports.returns import (
    ReturnUnitOfWorkFactory as ReturnUnitOfWorkFactory,
)
