"""A stand-in for the part of Stripe the portal uses (development and tests only).

    python -m sandbox.stripe serve --port 12111 --webhook-url http://127.0.0.1:8000/billing/stripe/webhook/

The portal reaches it through the real `stripe` package with STRIPE_API_BASE pointing here; it
does not know it is not Stripe. See sandbox/README.md for what it covers.
"""

from .server import StripeSandbox

__all__ = ["StripeSandbox"]
