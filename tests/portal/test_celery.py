"""The Celery app is configured for long, idempotent tasks that survive a worker dying."""

from __future__ import annotations

from django.conf import settings

from portal.celery import app


def test_tasks_are_acknowledged_only_after_they_ran():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_a_worker_takes_one_task_at_a_time():
    assert app.conf.worker_prefetch_multiplier == 1


def test_tasks_have_hard_and_soft_time_limits():
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.task_time_limit <= 60 * 60


def test_broker_matches_the_environment():
    if settings.REDIS_URL:
        assert app.conf.broker_url == settings.REDIS_URL
        # Redis must not redeliver a task that is only waiting for its countdown.
        assert app.conf.broker_transport_options["visibility_timeout"] >= 60 * 60
    else:
        assert app.conf.broker_url.startswith("filesystem://")
        queue = app.conf.broker_transport_options["data_folder_in"]
        assert queue == app.conf.broker_transport_options["data_folder_out"]


def test_visibility_timeout_outlasts_any_countdown_we_schedule():
    assert settings.CELERY_VISIBILITY_TIMEOUT > settings.CELERY_TASK_TIME_LIMIT
