"""The billing lifecycle soak: 30 customers over six simulated months, through real workers,
while the worker is SIGKILLed twice, the broker restarts empty, the webhook endpoint answers
500 for a while, webhooks come shuffled and several at once, and Proxmox loses its quorum.

Each customer places a real order and pays it on the Stripe sandbox's checkout; its server is
built on fakepve (the demo cluster, a small time scale) by a Celery worker process that
processes the webhooks the live server stored. The sandbox's clock moves a day at a time; the
beat work (`lifecycle_tick`, `upgrades_due`, `retry_stripe_events`, the operation reaper) is
called by the test with that simulated time, so what happens when is decided by the test, not
by a beat process. At the end money, servers and Proxmox agree (`audit_consistency`), each
transition is written once to the timeline and once to the ledger, no server runs whose
subscription ended and every paying one runs.
"""

from __future__ import annotations

import datetime
import io
import logging
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import pytest
import stripe
from django.conf import settings
from django.core import mail
from django.core.management import call_command

from billing import dunning, stripe_client, upgrades
from billing.catalog import plan_sync
from billing.models import (
    BillingAccount,
    BillingEvent,
    LedgerEntry,
    Order,
    Plan,
    StripeEvent,
    Subscription,
    Upgrade,
)
from billing.orders import checkout_url, order_place
from billing.tasks import retry_stripe_events
from instances.models import Instance, InstanceEvent, InstanceOperation, Location, OSImage
from instances.tasks import reap_operations
from tests.chaos.conftest import wait_for
from tests.factories import ProfileFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.fakepve(time_scale=0.02),  # a build takes about a second
]

DAY = 86400
DAYS = 183  # six months
GOOD = "4242424242424242"
LATER_DECLINED = "4000000000000341"  # pays at checkout; every later charge is declined
Status = Instance.Status
Kind = LedgerEntry.Kind
LIVE = InstanceOperation.LIVE


@dataclass
class Customer:
    n: int
    story: str
    card: str = GOOD
    pay_after: int = 0  # fail_once: days after the failed renewal the customer pays
    upgrades: tuple = ()  # (day, plan slug, keep disk)
    cancel_day: int = 0
    undo: bool = False
    dispute_day: int = 0
    outcome: str = ""  # won | lost
    user: object = None
    order_id: int = 0
    failing_since: int | None = None
    paid_late: bool = False
    dispute_id: str = ""
    upgrade_amounts: list = field(default_factory=list)

    @property
    def order_day(self) -> int:
        return self.n // 3  # three orders a day over the first ten days

    @property
    def hostname(self) -> str:
        return f"{self.story.replace('_', '-')}-{self.n}"

    def subscription(self) -> Subscription:
        return Subscription.objects.select_related("order__instance").get(order_id=self.order_id)

    def server(self) -> Instance:
        return Order.objects.get(pk=self.order_id).instance


def the_customers() -> list[Customer]:
    """Six stories, interleaved so that each day's orders and renewals mix them."""
    stories = [
        dict(story="paying"),
        dict(story="fail_once", card=LATER_DECLINED, pay_after=2),
        dict(story="fail_for_good", card=LATER_DECLINED),
        dict(story="upgrading", upgrades=((40, "nvme-vps-m", False),)),
        dict(story="cancelling", cancel_day=45),
        dict(story="disputing", dispute_day=50, outcome="won"),
        dict(story="paying"),
        dict(story="fail_once", card=LATER_DECLINED, pay_after=4),
        dict(story="fail_for_good", card=LATER_DECLINED),
        dict(story="upgrading", upgrades=((41, "nvme-vps-m", True),)),
        dict(story="cancelling", cancel_day=46, undo=True),
        dict(story="disputing", dispute_day=51, outcome="lost"),
        dict(story="paying"),
        dict(story="fail_once", card=LATER_DECLINED, pay_after=11),  # after the suspension
        dict(story="fail_for_good", card=LATER_DECLINED),
        dict(story="upgrading", upgrades=((42, "nvme-vps-m", False), (100, "nvme-vps-l", False))),
        dict(story="cancelling", cancel_day=47),
        dict(story="disputing", dispute_day=52, outcome="won"),
        dict(story="paying"),
        dict(story="fail_once", card=LATER_DECLINED, pay_after=13),  # after the suspension
        dict(story="fail_for_good", card=LATER_DECLINED),
        dict(story="upgrading", upgrades=((43, "nvme-vps-m", False),)),
        dict(story="cancelling", cancel_day=48),
        dict(story="disputing", dispute_day=53, outcome="lost"),
        dict(story="fail_once", card=LATER_DECLINED, pay_after=5),
        *[dict(story="paying")] * 5,
    ]
    return [Customer(n=n, **story) for n, story in enumerate(stories)]


def stripe_api(sandbox) -> stripe.StripeClient:
    """The test's own look at the sandbox (the portal's is billing/stripe_client.py)."""
    return stripe.StripeClient(
        sandbox.api_key,
        stripe_version=stripe_client.API_VERSION,
        base_addresses={"api": sandbox.url},
    )


# --- The simulation ---------------------------------------------------------------------------


class Soak:
    """The sandbox's clock, the beat work at its time, and waiting until all is quiet."""

    def __init__(self, sandbox, workers, broker, proxy, pve):
        self.sandbox, self.workers, self.broker, self.proxy, self.pve = (
            sandbox, workers, broker, proxy, pve,
        )  # fmt: skip
        self.api = stripe_api(sandbox)
        self.day = 0
        self.stored_before: int | None = None
        self.kills = 0
        self.lost_with_the_worker: list[int] = []  # events unprocessed when a worker died
        self.outage: tuple[float, float] | None = None  # while Redis was down (monotonic)

    def now(self) -> datetime.datetime:
        """The simulated time: the sandbox's clock, which the portal's beat work is given."""
        return datetime.datetime.fromtimestamp(self.sandbox.now(), tz=datetime.UTC)

    def note(self, text: str) -> None:
        print(f"[soak] day {self.day}: {text}")

    def deliveries_idle(self) -> bool:
        try:
            self.sandbox.wait_for_deliveries(timeout=0.001)
        except TimeoutError:
            return False
        return True

    def settle(self, timeout: float = 120) -> None:
        """Until every webhook is delivered and processed and no operation is under way. What
        beat does in real time meanwhile is done here too: the reaper every two seconds, and
        stored events queued again when none was processed for three."""
        deadline = time.monotonic() + timeout
        reaped = progressed = time.monotonic()
        processed = StripeEvent.objects.filter(processed_at__isnull=False).count()
        while True:
            idle = self.deliveries_idle()
            pending = StripeEvent.objects.filter(processed_at__isnull=True).count()
            live = InstanceOperation.objects.filter(state__in=LIVE).count()
            if idle and not pending and not live:
                return
            now = time.monotonic()
            done = StripeEvent.objects.filter(processed_at__isnull=False).count()
            if done != processed:
                processed, progressed = done, now
            if now - reaped > 2:
                reap_operations()
                reaped = now
            if pending and now - progressed > 3:
                retry_stripe_events(now=self.now())
                progressed = now
            if now > deadline:
                raise AssertionError(self.stuck(idle))
            time.sleep(0.05)  # polling the database, bounded by the deadline

    def stuck(self, idle: bool) -> str:
        events = StripeEvent.objects.filter(processed_at__isnull=True)
        operations = InstanceOperation.objects.filter(state__in=LIVE).select_related("instance")
        return "\n".join(
            [
                f"day {self.day}: not settled (deliveries idle: {idle})",
                *[f"  event {e.event_id} {e.type} attempts={e.attempts} {e.last_error}"
                  for e in events[:20]],
                *[f"  operation {o.pk} {o.kind} of {o.instance.hostname}: {o.state} {o.step} "
                  f"attempts={o.attempts} {o.waiting_reason} {o.error}" for o in operations],
                f"  worker alive: {self.workers.alive()}; its log ends:",
                self.workers.tail(),
            ]
        )  # fmt: skip

    def beat(self) -> None:
        """Beat's billing work, at the simulated time."""
        now = self.now()
        report = dunning.lifecycle_tick(now)
        moved = upgrades.upgrades_due(now)
        retry_stripe_events(now=now)
        reap_operations()
        if report.reminded or report.suspended or report.ended or report.retried or moved:
            self.note(f"beat: {report}, upgrades moved {moved}")

    def advance_day(self) -> None:
        self.stored_before = (
            StripeEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
        )
        self.sandbox.advance(DAY)
        self.day += 1

    def midway(self) -> bool:
        """Some of the day's webhooks processed, others not yet."""
        today = StripeEvent.objects.filter(pk__gt=self.stored_before or 0)
        return (
            today.filter(processed_at__isnull=False).exists()
            and today.filter(processed_at__isnull=True).exists()
        )


# --- What the customers do --------------------------------------------------------------------


def order_and_pay(soak: Soak, customer: Customer) -> None:
    customer.user = ProfileFactory(
        user__email=f"customer{customer.n}@example.de", full_name=f"Customer {customer.n}"
    ).user
    order = order_place(
        owner=customer.user,
        plan_id=Plan.objects.get(slug="nvme-vps-s").pk,
        location_id=Location.objects.get().pk,
        os_image_id=OSImage.objects.get(slug="debian-12").pk,
        hostname=customer.hostname,
        ssh_key_ids=[],
        generate_password=True,
    )
    checkout_url(order)  # as the Pay button does
    order.refresh_from_db()
    soak.sandbox.pay(order.stripe_checkout_session_id, customer.card)
    customer.order_id = order.pk


def open_invoice_of(soak: Soak, customer: Customer):
    subscription = customer.subscription().stripe_subscription_id
    [invoice] = soak.api.v1.invoices.list({"subscription": subscription, "status": "open"}).data
    return invoice


def pay_and_change_card(soak: Soak, customer: Customer) -> None:
    """The open invoice paid on its hosted page with another card, which then replaces the
    one on file in Stripe's customer portal (as the Billing page's link leads there)."""
    soak.sandbox.pay_invoice(open_invoice_of(soak, customer).id, GOOD)
    account = BillingAccount.objects.get(user=customer.user)
    session = stripe_client.billing_portal_session_create(
        customer_id=account.stripe_customer_id, return_url="http://127.0.0.1/billing/"
    )
    form = urllib.parse.urlencode({"card_number": GOOD, "expiry": "12 / 34", "cvc": "123"})
    request = urllib.request.Request(session["url"] + "/card", data=form.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert "Card saved." in response.read().decode()


def upgrade(soak: Soak, customer: Customer, slug: str, keep_disk: bool) -> Upgrade:
    server = customer.server()
    options = upgrades.upgrade_options(customer.user, server, now=soak.now())
    [option] = [o for o in options if o.plan.slug == slug]
    done = upgrades.upgrade_confirm(
        user=customer.user, instance=server, token=option.token, keep_disk=keep_disk
    )
    customer.upgrade_amounts.append((done.pk, option.due_now_cents))
    return done


def with_payments(soak: Soak, invoice_id: str):
    """The invoice with its payments (Stripe includes them only when asked)."""
    return soak.api.v1.invoices.retrieve(invoice_id, {"expand": ["payments"]})


def latest_paid_charge(soak: Soak, customer: Customer) -> str:
    subscription = customer.subscription().stripe_subscription_id
    paid = soak.api.v1.invoices.list({"subscription": subscription, "status": "paid"}).data
    invoice = with_payments(soak, max(paid, key=lambda i: i.created).id)
    intent = invoice.payments.data[0].payment.payment_intent
    return soak.api.v1.payment_intents.retrieve(intent).latest_charge


def customer_day(soak: Soak, customer: Customer) -> None:
    """What the customer does today, by story."""
    day = soak.day
    if customer.order_day == day:
        order_and_pay(soak, customer)
    if not customer.order_id or customer.order_day == day:
        return
    failing = customer.story == "fail_once" and not customer.paid_late
    if failing and customer.subscription().status in ("past_due", "unpaid"):
        customer.failing_since = customer.failing_since or day
        if day - customer.failing_since >= customer.pay_after:
            pay_and_change_card(soak, customer)
            customer.paid_late = True
            soak.note(f"{customer.hostname} paid its open invoice and changed its card")
    for upgrade_day, slug, keep_disk in customer.upgrades:
        if upgrade_day == day:
            done = upgrade(soak, customer, slug, keep_disk)
            soak.note(f"{customer.hostname} upgrades to {slug}: {done.state}")
    cancelling = {customer.cancel_day: False} if customer.cancel_day else {}
    if customer.undo:  # cancelled, undone the next day, cancelled again the day after
        cancelling |= {customer.cancel_day + 1: True, customer.cancel_day + 2: False}
    if day in cancelling:
        dunning.cancel_at_period_end(
            subscription=customer.subscription(), user=customer.user, undo=cancelling[day]
        )
    if customer.dispute_day == day:
        customer.dispute_id = soak.sandbox.dispute(latest_paid_charge(soak, customer))["id"]
    if customer.dispute_day and day == customer.dispute_day + 10:
        soak.sandbox.close_dispute(customer.dispute_id, customer.outcome)


# --- The faults -------------------------------------------------------------------------------


def kill_the_worker_while(soak: Soak, busy, what: str) -> None:
    """SIGKILL the worker once `busy()` says it is in the middle of something, then start
    another one a moment later."""
    wait_for(busy, timeout=30, what=what, every=0.01)
    soak.workers.kill()
    soak.kills += 1
    unprocessed = StripeEvent.objects.filter(processed_at__isnull=True)
    soak.lost_with_the_worker += list(unprocessed.values_list("pk", flat=True))
    soak.note(f"worker SIGKILLed while {what} ({unprocessed.count()} events unprocessed)")
    time.sleep(1)  # nobody works meanwhile
    soak.workers.start()


def events_in_flight() -> bool:  # stored, not processed yet
    return StripeEvent.objects.filter(processed_at__isnull=True).exists()


def an_operation_running() -> bool:
    return InstanceOperation.objects.filter(state=InstanceOperation.State.RUNNING).exists()


def faults_of_the_day(soak: Soak) -> None:
    day = soak.day
    if day == 4:  # while today's orders are being built
        soak.pve.lose_quorum()
        regain = threading.Timer(4, soak.pve.regain_quorum)
        regain.daemon = True
        regain.start()
        soak.note("Proxmox loses its quorum for 4 s")


def faults_before_the_advance(soak: Soak) -> None:
    if soak.day == 93:  # the renewals of the 94th day meet it
        soak.proxy.fail_for(2.5)
        soak.note("the webhook endpoint answers 500 for 2.5 s")
    if soak.day == 123:  # and the 124th day's: stored, but Stripe hears 500 and sends again
        soak.proxy.fail_for(2.5, after_forwarding=True)
        soak.note("the webhook endpoint answers 500 for 2.5 s after the portal stored them")
    if soak.day == 62:  # the 63rd day's webhooks wait until the broker is down
        soak.sandbox.pause_deliveries()


def faults_after_the_advance(soak: Soak) -> None:
    """Faults that must meet the work a day's advance brought (renewals, their webhooks)."""
    day = soak.day
    if day == 33:
        kill_the_worker_while(soak, soak.midway, "processing renewals")
    if day == 63 and soak.broker.redis:
        down = time.monotonic()
        soak.broker.restart(down_for=2, while_down=soak.sandbox.resume_deliveries)
        soak.outage = (down, time.monotonic())
        soak.note("Redis down for 2 s while the day's webhooks came, then back empty")
    elif day == 63:
        soak.sandbox.resume_deliveries()
        wait_for(events_in_flight, timeout=30, what="renewal webhooks")
        lost = soak.broker.restart(down_for=0)
        soak.note(f"the filesystem broker's queue emptied: {lost} messages lost")


# --- The soak ---------------------------------------------------------------------------------


@pytest.fixture
def soak(world, demo_location, stripe_settings, settings, broker, workers, webhook_proxy):
    for plan in Plan.objects.all():
        plan_sync(plan)
    settings.OPERATION_STUCK_AFTER = 5  # the reaper (run by the test) resumes lost operations
    settings.OPERATION_LEASE = 3
    settings.AUDIT_SETTLE_MINUTES = 0  # the end is quiet: nothing is allowed to be settling
    stripe_settings.set_delivery_order(shuffle=True, concurrency=4, seed=11)
    workers.start()
    yield Soak(stripe_settings, workers, broker, webhook_proxy, world)
    # Whatever the soak stopped on, the session's sandbox delivers again for the next test.
    stripe_settings.resume_deliveries()
    world.regain_quorum()


def test_six_months_of_thirty_customers_through_faults(soak, caplog):
    caplog.set_level(logging.WARNING, logger="billing.tasks")
    customers = the_customers()
    started = time.monotonic()
    while soak.day < DAYS:
        faults_of_the_day(soak)
        for customer in customers:
            customer_day(soak, customer)
        if soak.day == 41:  # the second upgrade's server is being resized
            kill_the_worker_while(soak, an_operation_running, "resizing a server")
        soak.settle()
        faults_before_the_advance(soak)
        soak.advance_day()
        faults_after_the_advance(soak)
        soak.settle()
        soak.beat()
        soak.beat()  # beat may run twice: nothing happens twice
        soak.settle()
    print(f"[soak] {DAYS} simulated days in {time.monotonic() - started:.0f} s")

    audit = io.StringIO()
    call_command("audit_consistency", stdout=audit)
    assert "Money, servers and Proxmox agree." in audit.getvalue()
    problems = []
    for customer in customers:
        problems += subscription_problems(soak, customer) + server_problems(soak, customer)
    problems += ledger_problems(soak) + mail_problems(soak, customers)
    assert not problems, "\n".join(problems)
    check_faults_bit(soak, customers)
    check_outage(soak, caplog)


# --- What must hold at the end ----------------------------------------------------------------

BUILT = [
    ("", "pending"),
    ("pending", "queued"),
    ("queued", "provisioning"),
    ("provisioning", "running"),
]
SUSPENDED = [("running", "suspended")]
RESTORED = [("suspended", "running")]
REMOVED = [("terminating", "terminated")]


def expected_statuses(customer: Customer) -> list[tuple[str, str]]:
    """The subscription's status transitions, each once, in order."""
    subscribed = [("", "active"), ("active", "past_due")]
    if customer.story == "fail_once" and customer.pay_after > 9:
        # Stripe's last retry (the 9th day) came first: unpaid, then paid.
        return [*subscribed, ("past_due", "unpaid"), ("unpaid", "active")]
    if customer.story == "fail_once":
        return [*subscribed, ("past_due", "active")]
    if customer.story == "fail_for_good":
        return [*subscribed, ("past_due", "unpaid"), ("unpaid", "canceled")]
    if customer.story == "cancelling":
        return [("", "active"), ("active", "canceled")]
    return [("", "active")]


def expected_timeline(customer: Customer) -> list[tuple[str, str]]:
    """The server's status transitions on its timeline, each once, in order."""
    if customer.story == "fail_once" and customer.pay_after > 9:
        return BUILT + SUSPENDED + RESTORED
    if customer.story == "fail_for_good":
        return BUILT + SUSPENDED + [("suspended", "terminating")] + REMOVED
    if customer.story == "cancelling":
        return BUILT + [("running", "terminating")] + REMOVED
    return BUILT


def ends(customer: Customer) -> bool:
    return customer.story in ("fail_for_good", "cancelling")


def subscription_problems(soak: Soak, customer: Customer) -> list[str]:
    subscription = customer.subscription()
    name = f"{customer.hostname} ({subscription.stripe_subscription_id})"
    problems = []

    def expect(what: str, found, wanted) -> None:
        if found != wanted:
            problems.append(f"{name}: {what} {found}, expected {wanted}")

    def transitions(events) -> list[tuple[str, str]]:
        return list(events.values_list("old", "new"))

    events = BillingEvent.objects.filter(subscription=subscription)
    expect("status transitions", transitions(events.filter(field="status")),
           expected_statuses(customer))  # fmt: skip
    asked = [("False", "True")] + ([("True", "False"), ("False", "True")] if customer.undo else [])
    expect("cancellations", transitions(events.filter(field="cancel_at_period_end")),
           asked if customer.story == "cancelling" else [])  # fmt: skip
    paid = BillingEvent.objects.filter(order_id=customer.order_id)
    expect("order transitions", transitions(paid), [("awaiting_payment", "paid")])
    at_stripe = soak.api.v1.subscriptions.retrieve(subscription.stripe_subscription_id).status
    wanted = "canceled" if ends(customer) else "active"
    expect("status (ours, Stripe's)", (subscription.status, at_stripe), (wanted, wanted))
    if not ends(customer):
        expect("suspended at", subscription.suspended_at, None)
    if customer.story == "disputing":
        account = BillingAccount.objects.get(user=customer.user)
        expect("open disputes", account.open_disputes, [])  # closed, won or lost
    return problems


def server_problems(soak: Soak, customer: Customer) -> list[str]:
    server = customer.server()
    name = customer.hostname
    problems = []

    def expect(what: str, found, wanted) -> None:
        if found != wanted:
            problems.append(f"{name}: {what} {found}, expected {wanted}")

    timeline = server.events.exclude(new_status="").values_list("old_status", "new_status")
    expect("timeline", list(timeline), expected_timeline(customer))
    vm = soak.pve.vm(server.vmid)
    if ends(customer):
        expect("server, VM", (server.status, vm), (Status.TERMINATED, None))
        return problems
    expect("server, VM", (server.status, vm and vm.status), (Status.RUNNING, "running"))
    if not customer.upgrades:
        return problems
    _day, slug, keep_disk = customer.upgrades[-1]
    plan = Plan.objects.get(slug=slug)
    expect("plan", customer.subscription().plan, plan)
    size = (plan.vcpus, plan.memory_mib, 75 if keep_disk else plan.disk_gib)
    expect("size", (server.vcpus, server.memory_mib, server.disk_gib), size)
    for upgrade_id, shown in customer.upgrade_amounts:
        done = Upgrade.objects.get(pk=upgrade_id)
        expect(f"upgrade {done}", (done.state, done.error), (Upgrade.State.APPLIED, ""))
        invoice = soak.api.v1.invoices.retrieve(done.stripe_invoice_id)
        # What the page showed is what was charged: prorated, less than a whole month more.
        expect(f"upgrade {done} invoice", (invoice.status, invoice.amount_paid), ("paid", shown))
        full_month = (done.to_plan.price_cents - done.from_plan.price_cents) * 119 // 100
        if not 0 < shown < full_month:
            problems.append(f"{name}: upgrade {done} charged {shown}, a month is {full_month}")
    return problems


def expected_mails(soak: Soak, customer: Customer) -> Counter:
    """What the customer was told, each once: per renewal paid a receipt, per failed attempt a
    notice, reminders on days 3 and 7 while past due, and what happened to the server."""
    host = customer.hostname
    wanted = Counter({f"Your server {host} is ready": 1})
    subscription = customer.subscription().stripe_subscription_id
    for invoice in stripe_list(soak, "invoices", subscription=subscription):
        if invoice.status == "paid" and invoice.billing_reason == "subscription_cycle":
            wanted[f"Receipt for invoice {invoice.number}"] += 1
        failed = (invoice.attempt_count or 0) - (1 if invoice.status == "paid" else 0)
        if failed > 0:
            wanted["Your payment did not go through"] += failed
            reminders = (
                2
                if customer.story == "fail_for_good"
                else int(customer.pay_after > 3) + int(customer.pay_after > 7)
            )
            if reminders:
                wanted[f"Reminder: invoice {invoice.number} is still unpaid"] += reminders
    if customer.story == "fail_for_good" or customer.pay_after > 9:
        wanted[f"{host} is suspended"] += 1
    if customer.pay_after > 9:
        wanted[f"{host} runs again"] += 1
    if ends(customer):
        wanted[f"{host} was removed"] += 1
    if customer.story == "cancelling":
        wanted[f"Cancellation of {host}"] += 2 if customer.undo else 1
    return wanted


def mail_problems(soak: Soak, customers: list[Customer]) -> list[str]:
    """No mail twice, none unexpected, and none missing but those a SIGKILLed worker took
    with it: a mail is sent once the transaction that decided it has committed (never twice),
    so a worker killed in between loses it, at most one per pool process killed."""
    prefix = settings.ACCOUNT_EMAIL_SUBJECT_PREFIX
    sent: dict[str, Counter] = {}
    here = [(", ".join(m.to), m.subject) for m in mail.outbox]
    for to, subject in soak.workers.mails() + here:
        sent.setdefault(to, Counter())[subject.removeprefix(prefix)] += 1
    problems, missing = [], []
    for customer in customers:
        got, wanted = sent.get(customer.user.email, Counter()), expected_mails(soak, customer)
        if got - wanted:
            problems.append(f"{customer.hostname}: mails {dict(got - wanted)} not expected")
        missing += [f"{customer.hostname}: {subject!r}" for subject in (wanted - got).elements()]
    if missing:
        print(f"[soak] mails lost with a killed worker: {missing}")
    if len(missing) > soak.kills * soak.workers.concurrency:
        problems += [f"mail missing: {line}" for line in missing]
    return problems


def stripe_list(soak: Soak, resource: str, **params) -> list:
    return list(getattr(soak.api.v1, resource).list({"limit": 100, **params}).auto_paging_iter())


def ledger_problems(soak: Soak) -> list[str]:
    """Every invoice, payment, failed attempt, dispute and payout once in the ledger: no row
    missing, none twice, none for anything Stripe does not have."""
    booked = Counter(LedgerEntry.objects.values_list("kind", "stripe_object_id"))
    problems = [f"ledger: {key} booked {n} times" for key, n in booked.items() if n > 1]
    expected = set()
    for invoice in stripe_list(soak, "invoices"):
        if invoice.status in ("open", "paid", "uncollectible"):
            expected.add((Kind.INVOICE_ISSUED, invoice.id))
        if invoice.status == "void" and (Kind.INVOICE_ISSUED, invoice.id) in booked:
            expected |= {(Kind.INVOICE_ISSUED, invoice.id), (Kind.INVOICE_VOIDED, invoice.id)}
        if invoice.status == "paid":
            expected.add((Kind.INVOICE_PAID, invoice.id))
            for payment in with_payments(soak, invoice.id).payments.data:
                expected.add((Kind.PAYMENT, payment.payment.payment_intent))
        failed = (invoice.attempt_count or 0) - (1 if invoice.status == "paid" else 0)
        if invoice.amount_due:
            expected |= {(Kind.PAYMENT_FAILED, f"{invoice.id}#{n}") for n in range(1, failed + 1)}
    for dispute in stripe_list(soak, "disputes"):
        expected.add((Kind.DISPUTE, dispute.id))
        if dispute.status == "won":
            reversal = [t for t in dispute.balance_transactions if t.amount > 0]
            expected.add((Kind.DISPUTE, reversal[0].id))
    for payout in stripe_list(soak, "payouts"):
        expected.add((Kind.PAYOUT, payout.id))
        for txn in stripe_list(soak, "balance_transactions", payout=payout.id):
            if txn.type != "payout":
                expected.add((Kind.BALANCE_TRANSACTION, txn.id))
    problems += [f"ledger: {key} missing" for key in sorted(expected - set(booked))]
    problems += [f"ledger: {key} not at Stripe" for key in sorted(set(booked) - expected)]
    return problems


def check_faults_bit(soak: Soak, customers: list[Customer]) -> None:
    """Each fault met work in flight, and that work was finished."""
    retried = InstanceEvent.objects.filter(detail__contains="no quorum")
    assert retried.exists(), "no operation met the lost quorum"
    print(f"[soak] {retried.count()} operation steps retried while Proxmox had no quorum")
    [resized] = [c for c in customers if c.n == 9]
    resumed = resized.server().events.filter(message="Resuming an upgrade that had stalled.")
    assert resumed.exists(), "the resize the worker died in was not resumed"
    assert soak.lost_with_the_worker
    lost = StripeEvent.objects.filter(pk__in=soak.lost_with_the_worker)
    assert not lost.filter(processed_at__isnull=True).exists()
    # Whatever failed on the way (a worker killed, a publish refused) ended processed, and no
    # error outlived its success.
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()
    assert not StripeEvent.objects.exclude(last_error="").exists()


def check_outage(soak: Soak, caplog) -> None:
    """While the broker was down, webhooks were still answered at once (stored, not queued),
    and beat's retry processed what could not be queued; the webhooks answered 500 came again
    and were processed."""
    refused = [d for d in soak.sandbox.deliveries() if d["status"] == 500]
    assert refused, "the endpoint never answered 500"
    delivered = {d["event"] for d in soak.sandbox.deliveries() if d["status"] == 200}
    assert {d["event"] for d in refused} <= delivered
    if soak.outage is None:
        print(
            "[soak] no publish failed: the filesystem broker's restart deleted the queued "
            "messages instead (the webhook's publish fails only against Redis)"
        )
        return
    down, up = soak.outage
    during = [seconds for at, seconds, _ in soak.proxy.answers if down <= at <= up]
    slowest = max(during, default=0)
    print(f"[soak] {len(during)} webhooks answered while Redis was down, slowest {slowest:.2f} s")
    assert during and slowest < 3
    unqueued = [r for r in caplog.records if "stored but not queued" in r.getMessage()]
    assert unqueued, "no webhook met the outage"
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()
