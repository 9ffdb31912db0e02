"""Thin Celery tasks: take ids, call the operation engine, re-queue themselves while PVE works."""

from __future__ import annotations

from celery import shared_task

from instances.operations import engine


@shared_task(name="instances.advance_operation", ignore_result=True)
def advance_operation(operation_id: int, chain: str = "") -> None:
    delay = engine.advance(operation_id, chain=chain)
    if delay is not None:
        advance_operation.apply_async((operation_id, chain), countdown=delay)


@shared_task(name="instances.reap_operations", ignore_result=True)
def reap_operations() -> None:
    for operation_id, chain in engine.reap():
        advance_operation.delay(operation_id, chain)
