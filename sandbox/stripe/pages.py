"""The HTML a person sees on "Stripe": the hosted checkout page, the hosted invoice (and its PDF)
and the customer portal. Plain server-rendered pages: no JavaScript, nothing from elsewhere.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from .billing import Billing

STYLE = """
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, sans-serif; color: #1a1f36; background: #f6f9fc; margin: 0; }
main { max-width: 34rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem;
  border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.1); }
h1 { font-size: 1.3rem; } table { width: 100%; border-collapse: collapse; }
td, th { padding: .3rem 0; text-align: left; } td.amount { text-align: right; }
tr.total td { font-weight: 700; border-top: 1px solid #ccc; }
label { display: block; margin-top: .7rem; font-weight: 600; }
input { width: 100%; padding: .5rem; font-size: 1rem; border: 1px solid #bbb; border-radius: 4px; }
button { margin-top: 1rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0;
  border-radius: 4px; background: #635bff; color: #fff; cursor: pointer; }
.error { color: #b42318; font-weight: 600; } .muted { color: #6b7385; }
.banner { background: #fff4d6; padding: .4rem .8rem; border-radius: 4px; font-size: .85rem; }
"""


def money(cents: int, currency: str) -> str:
    symbol = {"eur": "€", "usd": "$", "gbp": "£"}.get(currency.lower(), currency.upper() + " ")
    sign = "-" if cents < 0 else ""
    return f"{sign}{symbol}{abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def day(timestamp: int | None) -> str:
    if not timestamp:
        return "—"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%d %b %Y")


def document(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        "<p class='banner'>Stripe sandbox: test mode, no real money moves.</p>"
        f"{body}</main></body></html>"
    )


def _lines(rows: list[tuple[str, int]], currency: str, totals: list[tuple[str, int]]) -> str:
    out = ["<table><tbody>"]
    for text, amount in rows:
        out.append(
            f"<tr><td>{escape(text)}</td><td class='amount'>{money(amount, currency)}</td></tr>"
        )
    for n, (text, amount) in enumerate(totals):
        css = " class='total'" if n == len(totals) - 1 else ""
        cells = f"<td>{escape(text)}</td><td class='amount'>{money(amount, currency)}</td>"
        out.append(f"<tr{css}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def checkout(billing: Billing, session: dict, *, error: str = "", form: dict | None = None) -> str:
    form = form or {}
    currency = session["currency"]
    rows = []
    now = billing.s.now()
    for entry in billing.s.priv(session["id"]).get("items", []):
        price = billing.s.get(entry["price"])
        spec = billing.spec(price, entry["quantity"], entry["tax_rates"], (now, now))
        label = f"{entry['quantity']} × {billing.product_name(price)}"
        label += " (monthly)" if price["recurring"] else " (once)"
        rows.append((label, spec["amount"]))
    totals = [("Subtotal", session["amount_subtotal"])]
    if session["total_details"]["amount_tax"]:
        totals.append(("Tax", session["total_details"]["amount_tax"]))
    totals.append(("Total due today", session["amount_total"]))
    customer = billing.s.find(session["customer"]) or {}
    if session["status"] != "open":
        body = (
            "<h1>This checkout session is no longer active</h1>"
            f"<p>Its status is {escape(session['status'])}. Return to the shop to start again.</p>"
        )
        if session.get("cancel_url"):
            body += f"<p><a href='{escape(session['cancel_url'])}'>← Back</a></p>"
        return document("Checkout", body)
    back = (
        f"<p><a href='{escape(session['cancel_url'])}'>← Back</a></p>"
        if session.get("cancel_url")
        else ""
    )
    message = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    body = f"""{back}
<h1>Subscribe</h1>
<p class="muted">{escape(customer.get("email") or session.get("customer_email") or "")}</p>
{_lines(rows, currency, totals)}
{message}
<form method="post" action="/c/pay/{escape(session["id"])}">
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number"
         placeholder="1234 1234 1234 1234" required>
  <label for="expiry">Expiry (MM / YY)</label>
  <input id="expiry" name="expiry" autocomplete="cc-exp" placeholder="MM / YY"
         value="{escape(form.get("expiry", ""))}" required>
  <label for="cvc">CVC</label>
  <input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC"
         value="{escape(form.get("cvc", ""))}" required>
  <label for="name">Cardholder name</label>
  <input id="name" name="name" autocomplete="cc-name"
         value="{escape(form.get("name", "") or customer.get("name") or "")}">
  <button type="submit">Subscribe</button>
</form>
<p class="muted">Test cards: 4242 4242 4242 4242 succeeds; 4000 0000 0000 0002 is declined;
4000 0000 0000 0341 pays now and fails at renewal; 4000 0025 0000 3155 and
4000 0027 6000 3184 ask for 3-D Secure.</p>
{_sepa_form(session, form) if "sepa_debit" in session["payment_method_types"] else ""}"""
    return document("Checkout", body)


def _sepa_form(session: dict, form: dict) -> str:
    return f"""<h2>Or pay by SEPA Direct Debit</h2>
<form method="post" action="/c/pay/{escape(session["id"])}">
  <label for="iban">IBAN</label>
  <input id="iban" name="iban" autocomplete="off" placeholder="DE00 0000 0000 0000 0000 00"
         required>
  <label for="account_name">Account holder</label>
  <input id="account_name" name="name" value="{escape(form.get("name", ""))}" required>
  <p class="muted">By paying you authorise Sandbox Hosting to debit your account and your
  bank to carry out the debit (SEPA mandate). Test IBANs: DE89 3704 0044 0532 0130 00
  succeeds, DE62 3704 0044 0532 0130 01 fails, each a few minutes later.</p>
  <button type="submit">Pay by direct debit</button>
</form>"""


def checkout_challenge(billing: Billing, session: dict) -> str | None:
    """The bank's 3-D Secure page while the session's card payment waits for it, else None."""
    if session["status"] != "open":
        return None
    sub = billing.s.find(billing.s.priv(session["id"]).get("subscription"))
    invoice = billing.s.find(sub["latest_invoice"]) if sub else None
    pi = billing.s.find(billing.s.priv(invoice["id"]).get("payment_intent")) if invoice else None
    if not pi or pi["status"] != "requires_action":
        return None
    pm = billing.s.get(pi["payment_method"])
    action = f"/c/pay/{escape(session['id'])}/authenticate"
    body = f"""<h1>Confirm your payment</h1>
<p>Your bank asks you to confirm the payment of
{money(invoice["amount_due"], invoice["currency"])} with the card ending in
{escape(pm["card"]["last4"])} (3-D Secure test page).</p>
<form method="post" action="{action}">
  <button type="submit" name="result" value="complete">Complete authentication</button>
</form>
<form method="post" action="{action}">
  <button type="submit" name="result" value="fail">Fail authentication</button>
</form>"""
    return document("3-D Secure", body)


def invoice(billing: Billing, invoice: dict, *, error: str = "", notice: str = "") -> str:
    currency = invoice["currency"]
    rows = [(line["description"] or "", line["amount"]) for line in invoice["lines"]["data"]]
    taxes = sum(t["amount"] for t in invoice.get("total_taxes") or [])
    totals = [("Subtotal", invoice["subtotal"])]
    if taxes:
        totals.append(("Tax", taxes))
    totals.append(("Total", invoice["total"]))
    message = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    if notice:
        message += f"<p role='status'>{escape(notice)}</p>"
    body = f"""<h1>Invoice {escape(invoice.get("number") or invoice["id"])}</h1>
<p>Status: <strong>{escape(invoice["status"])}</strong> · issued {day(invoice["created"])}
· {escape(invoice.get("customer_name") or invoice.get("customer_email") or "")}</p>
{_lines(rows, currency, totals)}
<p>Amount paid: {money(invoice["amount_paid"], currency)}
· <a href="/i/{escape(invoice["id"])}/pdf">Download PDF</a></p>
{message}{_invoice_payment(billing, invoice) if invoice["status"] == "open" else ""}"""
    return document(f"Invoice {invoice.get('number') or invoice['id']}", body)


def _invoice_payment(billing: Billing, invoice: dict) -> str:
    """Pay an open invoice: authenticate the card on file, or pay with another card."""
    action = f"/i/{escape(invoice['id'])}/pay"
    due = money(invoice["amount_remaining"], invoice["currency"])
    pi = billing.s.find(billing.s.priv(invoice["id"]).get("payment_intent")) or {}
    pm = billing.payment_method_for(invoice)
    out = [f"<h2>Pay {due}</h2>"]
    if pi.get("status") == "requires_action" and pm:
        out.append(
            f"""<form method="post" action="{action}">
  <p>Your bank asks you to confirm this payment with the card ending in
  {escape(pm["card"]["last4"])} (3-D Secure).</p>
  <button type="submit" name="authenticate" value="1">Complete authentication</button>
</form>"""
        )
    elif pm:
        out.append(
            f"""<form method="post" action="{action}">
  <button type="submit" name="use_card_on_file" value="1">Pay with the card ending in
  {escape(pm["card"]["last4"])}</button>
</form>"""
        )
    out.append(
        f"""<form method="post" action="{action}">
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number"
         placeholder="1234 1234 1234 1234" required>
  <label for="expiry">Expiry (MM / YY)</label>
  <input id="expiry" name="expiry" autocomplete="cc-exp" placeholder="MM / YY" required>
  <label for="cvc">CVC</label>
  <input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" placeholder="CVC"
         required>
  <button type="submit">Pay {due}</button>
</form>"""
    )
    return "\n".join(out)


def invoice_pdf(invoice: dict) -> bytes:
    """A one-page PDF with the invoice's number, total and status (valid, minimal)."""
    text = (
        f"Invoice {invoice.get('number') or invoice['id']} - "
        f"total {money(invoice['total'], invoice['currency'])} - {invoice['status']}"
    ).replace("€", "EUR ")
    text = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 72 740 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def portal(billing: Billing, session: dict, *, error: str = "", notice: str = "") -> str:
    customer = billing.s.get(session["customer"], "customer")
    # The customer's default card, or else the newest one attached to them (Checkout attaches
    # the card it was paid with without making it the customer's default).
    cards = [
        pm
        for pm in billing.s.all("payment_method")
        if pm["customer"] == customer["id"] and pm["type"] == "card"
    ]
    default = customer["invoice_settings"].get("default_payment_method")
    pm = next((pm for pm in cards if pm["id"] == default), cards[0] if cards else None)
    card = (
        f"{pm['card']['brand'].title()} ending in {pm['card']['last4']}, expires "
        f"{pm['card']['exp_month']:02d}/{pm['card']['exp_year']}"
        if pm
        else "No card on file."
    )
    invoices = [i for i in billing.s.all("invoice") if i["customer"] == customer["id"]]
    rows = "".join(
        f"<tr><td><a href='/i/{escape(i['id'])}'>{escape(i.get('number') or i['id'])}</a></td>"
        f"<td>{day(i['created'])}</td><td>{escape(i['status'])}</td>"
        f"<td class='amount'>{money(i['total'], i['currency'])}</td></tr>"
        for i in invoices
    )
    back = (
        f"<p><a href='{escape(session['return_url'])}'>← Return</a></p>"
        if session.get("return_url")
        else ""
    )
    message = f"<p class='error' role='alert'>{escape(error)}</p>" if error else ""
    if notice:
        message += f"<p role='status'>{escape(notice)}</p>"
    body = f"""{back}
<h1>{escape(customer.get("name") or customer.get("email") or customer["id"])}</h1>
<h2>Payment method</h2>
<p>{escape(card)}</p>
{message}
<form method="post" action="/p/session/{escape(session["id"])}/card">
  <label for="card_number">New card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" required>
  <label for="expiry">Expiry (MM / YY)</label>
  <input id="expiry" name="expiry" required>
  <label for="cvc">CVC</label>
  <input id="cvc" name="cvc" inputmode="numeric" required>
  <button type="submit">Replace card</button>
</form>
<h2>Invoices</h2>
<table><thead><tr><th>Number</th><th>Date</th><th>Status</th><th>Total</th></tr></thead>
<tbody>{rows or "<tr><td colspan='4'>No invoices.</td></tr>"}</tbody></table>"""
    return document("Billing", body)
