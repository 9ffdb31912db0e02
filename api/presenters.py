"""Model rows as the API shows them (plain dicts the schemas validate)."""

from __future__ import annotations

from billing.models import Order, Plan, Upgrade
from instances import selectors
from instances.models import Instance, InstanceOperation


def plan(row: Plan) -> dict:
    return {
        "id": row.pk,
        "slug": row.slug,
        "name": row.name,
        "family": row.family,
        "vcpus": row.vcpus,
        "dedicated_cores": row.dedicated_cores,
        "memory_mib": row.memory_mib,
        "disk_gib": row.disk_gib,
        "storage_class": row.storage_class,
        "traffic_tb": row.traffic_tb,
        "currency": row.currency,
        "monthly_net_cents": row.price_cents,
        "setup_fee_net_cents": row.setup_fee_cents,
    }


def location(row) -> dict:
    return {"code": row.code, "name": row.name, "country": str(row.country)}


def image(row) -> dict:
    return {
        "slug": row.slug,
        "name": row.name,
        "family": row.family,
        "default_user": row.default_user,
        "min_disk_gib": row.min_disk_gib,
    }


def operation(row: InstanceOperation) -> dict:
    steps = selectors.progress(row)
    current = next((step.label for step in steps if step.state in ("current", "failed")), "")
    return {
        "id": row.pk,
        "server_id": row.instance_id,
        "kind": row.kind,
        "state": row.state,
        "step": current,
        "percent": selectors.percent_done(steps),
        "steps": [{"label": step.label, "state": step.state} for step in steps],
        "error_message": row.error_message,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


def server_summary(row: Instance) -> dict:
    return {
        "id": row.pk,
        "hostname": row.hostname,
        "status": row.status,
        "family": row.family,
        "plan": row.plan_name,
        "location": row.location.code,
        "image": row.os_image.slug,
        "ipv4": row.ipv4.address if row.ipv4_id else None,
        "created_at": row.created_at,
        "busy_with": getattr(row, "live_kind", None),
    }


def server(row: Instance) -> dict:
    panel = selectors.panel(row)
    live = panel.operation if panel.operation and panel.operation.is_live else None
    return server_summary(row) | {
        "busy_with": live.kind if live else None,
        "vcpus": row.vcpus,
        "dedicated_cores": row.dedicated_cores,
        "memory_mib": row.memory_mib,
        "disk_gib": row.disk_gib,
        "storage_class": row.storage_class,
        "traffic_tb": row.traffic_tb,
        "ipv6": row.ipv6 or None,
        "login_user": row.login_user,
        "ready_at": row.ready_at,
        "suspended_reason": row.suspended_reason,
        "waiting_for_reboot": panel.waiting_for_reboot,
        "reboot_at": row.reboot_at,
        "actions": sorted(panel.actions),
        "operation": operation(live) if live else None,
        "traffic_used_bytes": panel.traffic.total_bytes if panel.traffic else None,
        "traffic_allowance_bytes": panel.traffic_allowance_bytes,
    }


def order(row: Order) -> dict:
    return {
        "id": row.pk,
        "status": row.status,
        "plan": row.plan.slug,
        "location": row.location.code,
        "image": row.os_image.slug,
        "hostname": row.hostname,
        "currency": row.currency,
        "monthly_total_cents": row.monthly_net_cents + row.monthly_vat_cents,
        "setup_total_cents": row.setup_net_cents + row.setup_vat_cents,
        "vat_rate": str(row.vat_rate),
        "server_id": row.instance_id,
        "created_at": row.created_at,
        "paid_at": row.paid_at,
    }


def upgrade(row: Upgrade) -> dict:
    return {
        "id": row.pk,
        "kind": row.kind,
        "state": row.state,
        "to_plan": row.to_plan.slug,
        "amount_due_cents": row.amount_due_cents,
        "effective_at": row.effective_at,
        "pay_url": row.hosted_invoice_url if row.state == Upgrade.State.AWAITING_PAYMENT else "",
        "error": row.error,
    }
