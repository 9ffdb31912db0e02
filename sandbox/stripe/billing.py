"""What happens to money, put together from one class per concern:

- `checkout.py`: Checkout Sessions; `checkout_payments.py`: paying them (card, 3-D Secure, SEPA)
- `subscriptions.py`: the subscription object, renewals, retries, cancelling
- `subscription_create.py`: subscriptions made by the API, charged with a saved card
- `subscription_updates.py`: updates with `payment_behavior`, pending updates
- `prorations.py`: prorations and the invoice preview
- `invoices.py`: invoices, taxes, payment attempts; `cards.py`: what each test card does
- `refunds.py`: refunds and credit notes; `clock.py`: the portal's card change, payouts, the clock
- `disputes.py`: disputes (chargebacks) and failed payouts
"""

from __future__ import annotations

from .cards import CARDS, card_error, check_card
from .checkout import Checkout
from .checkout_payments import CheckoutPayments
from .clock import Clock
from .disputes import Disputes
from .invoices import Invoicing
from .objects import Objects
from .prorations import Prorations
from .refunds import Refunds
from .store import Store
from .subscription_create import SubscriptionCreate
from .subscription_updates import SubscriptionUpdates
from .subscriptions import Subscriptions

__all__ = ["CARDS", "Billing", "card_error", "check_card"]


class Billing(
    Checkout,
    CheckoutPayments,
    Subscriptions,
    SubscriptionCreate,
    SubscriptionUpdates,
    Prorations,
    Invoicing,
    Refunds,
    Disputes,
    Clock,
):
    def __init__(self, store: Store, public_url: str):
        self.s = store
        self.o = Objects(store, public_url)
