"""What happens to money, put together from one class per concern: checkout completion
(`checkout.py`), invoices, taxes and payments (`invoices.py`), subscriptions, prorations and
renewals (`subscriptions.py`), refunds and credit notes (`refunds.py`), the portal and the
clock (`clock.py`). Card behaviour is decided by the card number (`cards.py`).
"""

from __future__ import annotations

from .cards import CARDS, card_error, check_card
from .checkout import Checkout
from .clock import Clock
from .invoices import Invoicing
from .objects import Objects
from .refunds import Refunds
from .store import Store
from .subscriptions import Subscriptions

__all__ = ["CARDS", "Billing", "card_error", "check_card"]


class Billing(Checkout, Subscriptions, Invoicing, Refunds, Clock):
    def __init__(self, store: Store, public_url: str):
        self.s = store
        self.o = Objects(store, public_url)
