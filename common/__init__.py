"""Helpers every app needs. The bottom layer: imports no project app and nothing from `portal`
(reading `django.conf.settings` is fine)."""
