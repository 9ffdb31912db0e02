"""Liveness of the parts the portal cannot work without: the database and the task broker."""

from __future__ import annotations

import logging

from django.db import connection

from portal.celery import app as celery_app

logger = logging.getLogger(__name__)


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        return "down"
    return "ok"


def broker_status() -> str:
    try:
        with celery_app.connection_for_write() as conn:
            # One try, bounded by the broker's connect and socket timeouts: a broker that does
            # not answer within them is down for a health check.
            conn.ensure_connection(max_retries=0)
            # Opening a channel proves the broker answers, not just that a socket opened.
            conn.default_channel  # noqa: B018
    except Exception as exc:
        logger.warning("health: broker unreachable: %s", exc)
        return "down"
    return "ok"
