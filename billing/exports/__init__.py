"""Finance exports: one module per report, each reading only the append-only ledger.

`REPORTS` maps identifiers to report classes; `render.py` writes CSV and XLSX as a stream;
`services.py` runs an export now or on a worker and keeps its file; `views.py` is the
Exports page in the admin.
"""

from __future__ import annotations

from billing.exports.base import Report
from billing.exports.datev import DatevBookings
from billing.exports.invoices import InvoicesAndCreditNotes
from billing.exports.payments import PaymentsAndRefunds
from billing.exports.payouts import PayoutReconciliation
from billing.exports.revenue import RevenueByPlan
from billing.exports.vat import VatByCountry

REPORTS: dict[str, type[Report]] = {
    report.identifier: report
    for report in (
        InvoicesAndCreditNotes,
        PaymentsAndRefunds,
        PayoutReconciliation,
        VatByCountry,
        RevenueByPlan,
        DatevBookings,
    )
}
