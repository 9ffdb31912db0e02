"""Thin Celery tasks: take ids, call provisioning, re-queue themselves while PVE works."""

from __future__ import annotations

from celery import shared_task

from instances import provisioning


@shared_task(name="instances.provision", ignore_result=True)
def provision_instance(instance_id: int, chain: str = "") -> None:
    delay = provisioning.advance(instance_id, chain=chain)
    if delay is not None:
        provision_instance.apply_async((instance_id, chain), countdown=delay)


@shared_task(name="instances.reap_stuck_builds", ignore_result=True)
def reap_stuck_builds() -> None:
    for instance_id, chain in provisioning.reap():
        provision_instance.delay(instance_id, chain)
