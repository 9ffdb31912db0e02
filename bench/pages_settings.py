"""Settings for the page benchmark (bench/pages.py): the portal's own, plus the reference view.

Everything the portal does per request (middleware, sessions, templates) stays as configured in
portal/settings.py; only the URLconf gains /bench/reference/ and the template search path gains
bench/templates/, so the reference is served by the same gunicorn in the same run.
"""

from __future__ import annotations

import runpy
from pathlib import Path

# Run portal/settings.py as a file: importing it as `portal.settings` would first import the
# `portal` package, whose Celery app reads the settings, i.e. this half-loaded module.
_BASE_DIR = Path(__file__).resolve().parent.parent
globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(_BASE_DIR / "portal" / "settings.py")).items()
        if name.isupper()
    }
)

ROOT_URLCONF = "bench.pages_urls"
TEMPLATES = [
    TEMPLATES[0] | {"DIRS": [*TEMPLATES[0]["DIRS"], _BASE_DIR / "bench" / "templates"]}  # noqa: F821
]
