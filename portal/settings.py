"""Settings for the VPS portal: one file, read from the environment, safe development defaults.

Every variable is listed in `.env.example`. Production sets at least SECRET_KEY, DEBUG=0,
ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and the Stripe keys.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    # An empty value means "not set", so a copied .env.example with blanks keeps the defaults.
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# SQLite (development, demo, tests) is shared by the web server, the workers and the tests'
# threads: a writer takes the write lock when its transaction begins (IMMEDIATE), so writers queue
# for up to `timeout` seconds instead of failing when a read turns into a write; WAL lets readers
# go on while one connection writes.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
}


def database_from_url(url: str, *, var_dir: Path) -> dict:
    """A DATABASES entry from `postgres[ql]://user:pass@host:port/name?opt=val`,
    `sqlite:///relative/path` (from the project directory) or `sqlite:////absolute/path`."""
    database = dj_database_url.parse(
        url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True
    )
    if database["ENGINE"] == "django.db.backends.sqlite3":
        if database["NAME"] != ":memory:":
            database["NAME"] = BASE_DIR / database["NAME"]  # an absolute path stays as it is
        database["OPTIONS"] = SQLITE_OPTIONS | database.get("OPTIONS", {})
        # A file, not SQLite's shared in-memory database: that one locks whole tables and fails
        # concurrent writers instead of letting them wait, and no other process can open it.
        database["TEST"] = {"NAME": var_dir / "test-portal.sqlite3"}
    return database


def mailer_from_url(url: str) -> dict:
    """A MAILERS entry from `console:`, `file:///dir`, `locmem:` or `smtp[s]://user:pass@host:port`."""
    parts = urlsplit(url)
    backends = {
        "console": "portal.mail.ConsoleEmailBackend",  # headers and the text, decoded
        "file": "django.core.mail.backends.filebased.EmailBackend",
        "locmem": "django.core.mail.backends.locmem.EmailBackend",
        "smtp": "django.core.mail.backends.smtp.EmailBackend",
        "smtps": "django.core.mail.backends.smtp.EmailBackend",
    }
    if parts.scheme not in backends:
        raise ValueError(f"EMAIL_URL scheme must be one of {sorted(backends)}")
    options: dict = {}
    if parts.scheme == "file":
        options["file_path"] = parts.path or str(BASE_DIR / "var" / "mail")
    if parts.scheme.startswith("smtp"):
        options = {
            "host": parts.hostname or "localhost",
            "port": parts.port or (465 if parts.scheme == "smtps" else 587),
            "username": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "use_ssl": parts.scheme == "smtps",
            "use_tls": parts.scheme == "smtp" and parts.port != 25,
            "timeout": 20,
        }
    return {"BACKEND": backends[parts.scheme], "OPTIONS": options}


# --- Core ------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", True)
_DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env("SECRET_KEY", _DEV_SECRET_KEY)
if not DEBUG and SECRET_KEY == _DEV_SECRET_KEY:
    raise RuntimeError("Set SECRET_KEY when DEBUG is off.")
# Encrypt the secrets kept in the database (Proxmox API tokens, root passwords, two-factor
# seeds): new values with the first key, while every listed key decrypts (common/crypto.py).
# FIELD_ENCRYPTION_KEY is the one-key spelling; with neither set, SECRET_KEY is the key, so
# whoever rotates SECRET_KEY lists the old one here and runs `manage.py rotate_secrets`.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS") or [
    env("FIELD_ENCRYPTION_KEY", SECRET_KEY)
]
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
# What mail calls the portal: "Hello from <SITE_NAME>!" (allauth), subjects "[<SITE_NAME>] ...".
SITE_NAME = env("SITE_NAME", "VPS portal")
VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))

AUTH_USER_MODEL = "accounts.User"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "portal",
    "accounts",
    "instances",
    "billing",
    "ninja",  # its Swagger UI files, served from here (no CDN)
    "api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "portal.middleware.StaffTwoFactorMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.CacheUnavailableMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "billing.context_processors.payment_notice",
            ],
        },
    },
]

# --- Database, cache, broker -----------------------------------------------------------------

DATABASES = {
    "default": database_from_url(
        env("DATABASE_URL", f"sqlite:///{(VAR_DIR / 'portal.sqlite3').absolute()}"), var_dir=VAR_DIR
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite makes its files, not their folder
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", "portal")
# A Redis that accepts connections and never answers must not hold a request (or a worker):
# each command gives up after REDIS_SOCKET_TIMEOUT, each connection attempt after
# REDIS_CONNECT_TIMEOUT (seconds). Redis answers in well under a millisecond when healthy.
REDIS_SOCKET_TIMEOUT = float(env("REDIS_SOCKET_TIMEOUT", "1"))
REDIS_CONNECT_TIMEOUT = float(env("REDIS_CONNECT_TIMEOUT", "1"))


def redis_cache(url: str) -> dict:
    """The CACHES entry for a Redis at `url`, with the timeouts above."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": CACHE_KEY_PREFIX,
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT,
            "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
        },
    }


if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL)}
else:
    # A cache shared by every process (rate limits must hold across web workers): the
    # database. `manage.py createcachetable` makes its table (make run and the test runner do).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "portal_cache",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

# Celery: Redis when REDIS_URL is set, else kombu's filesystem transport, which works across
# processes without any server. Read by portal/celery.py (namespace CELERY_).
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
BROKER_DIR = VAR_DIR / "broker"
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 15 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 14 * 60)
# Longer than any countdown/ETA the portal schedules, so Redis never redelivers a task that is
# merely waiting (see Celery's docs on visibility_timeout).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 60 * 60)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# Sending a task retries this often (each try bounded by the Redis timeouts above) before the
# caller gets an error; work that must not be lost is stored first and queued again by beat.
CELERY_PUBLISH_MAX_RETRIES = env_int("CELERY_PUBLISH_MAX_RETRIES", 2)

# --- Accounts (django-allauth) ---------------------------------------------------------------

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "instances:list"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = "username"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_PREVENT_ENUMERATION = True
# allauth's rate limits stay at its defaults (e.g. failed logins: 10/min per IP, 5 per 5 min per
# account); they live in the shared cache above. /admin/ logs in through allauth (portal/urls.py),
# so the same limits guard staff logins.
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", "VPS portal")
# Encrypts the TOTP and recovery-code seeds at rest, like every other secret we store.
MFA_ADAPTER = "accounts.mfa.MFAAdapter"

DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <noreply@portal.example.com>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Production defaults to the local MTA; development prints mail to the console.
MAILERS = {
    "default": mailer_from_url(env("EMAIL_URL", "console:" if DEBUG else "smtp://localhost:25"))
}

# --- Server operations (seconds unless named otherwise) ---------------------------------------

# The first look at a busy PVE task of a kind not seen before (later looks come at a twentieth
# of the time waited, up to 5 s); kinds seen before are looked at when they usually end.
OPERATION_POLL = float(env("OPERATION_POLL", "0.5"))
OPERATION_RETRY_BASE = float(env("OPERATION_RETRY_BASE", "5"))
OPERATION_MAX_RETRIES = env_int("OPERATION_MAX_RETRIES", 6)
OPERATION_CAPACITY_RETRY = float(env("OPERATION_CAPACITY_RETRY", "60"))
# How long a worker's claim on an operation lasts without progress: longer than a few PVE API
# calls (30 s timeout each); steps never block on a PVE task.
OPERATION_LEASE = env_int("OPERATION_LEASE", 120)
# An operation untouched this long with no worker on it is resumed by the reaper...
OPERATION_STUCK_AFTER = env_int("OPERATION_STUCK_AFTER", 600)
# ...and one whose current step started this long ago is failed for staff.
OPERATION_DEADLINE = env_int("OPERATION_DEADLINE", 3600)
OPERATION_REAPER_INTERVAL = env_int("OPERATION_REAPER_INTERVAL", 60)
# How long a guest gets to power off after the ACPI request before it is stopped.
OPERATION_SHUTDOWN_TIMEOUT = env_int("OPERATION_SHUTDOWN_TIMEOUT", 60)
# How often beat reads every cluster's VM states (power, node, traffic counters).
STATUS_SYNC_INTERVAL = env_int("STATUS_SYNC_INTERVAL", 30)
# How often beat compares every server's firewall on PVE with the portal's (and repairs it).
FIREWALL_CHECK_INTERVAL = env_int("FIREWALL_CHECK_INTERVAL", 600)
# How often beat moves every draining node on (each finished migration does so at once).
DRAIN_INTERVAL = env_int("DRAIN_INTERVAL", 30)
# Scheduled backups start only inside this window (HH:MM-HH:MM in BACKUP_TIME_ZONE; it may pass
# midnight; equal ends: at any time), one a day per server, at most BACKUP_MAX_PER_NODE at once
# on a node (vzdump runs one job per node at a time); a backup waiting for a slot looks again
# after BACKUP_SLOT_RETRY, and beat looks for due backups every BACKUP_SCHEDULE_INTERVAL.
BACKUP_WINDOW = env("BACKUP_WINDOW", "01:00-06:00")
BACKUP_TIME_ZONE = env("BACKUP_TIME_ZONE", "Europe/Berlin")
BACKUP_MAX_PER_NODE = max(1, env_int("BACKUP_MAX_PER_NODE", 1))
BACKUP_SLOT_RETRY = float(env("BACKUP_SLOT_RETRY", "30"))
BACKUP_SCHEDULE_INTERVAL = env_int("BACKUP_SCHEDULE_INTERVAL", 300)
# How long usage graph samples from PVE are kept before they are fetched again.
USAGE_CACHE_SECONDS = env_int("USAGE_CACHE_SECONDS", 60)

# --- The browser console (instances/consoles.py, the ASGI server's instances/console_proxy.py) ----

# Where browsers open the console's websocket: the ASGI server (portal/asgi.py). Empty: the
# page's own origin, /console/ws/ sent to it by the TLS proxy (production); `make run` sets
# ws://127.0.0.1:8001. The CSP's connect-src allows exactly this origin.
CONSOLE_WEBSOCKET_ORIGIN = env("CONSOLE_WEBSOCKET_ORIGIN").rstrip("/")
# Seconds a console session has to connect (once); without input for this long it closes; how
# often the proxy looks again at the session, the server and the login (sign-out, suspension).
CONSOLE_SESSION_TTL = env_int("CONSOLE_SESSION_TTL", 60)
CONSOLE_IDLE_TIMEOUT = env_int("CONSOLE_IDLE_TIMEOUT", 900)
CONSOLE_CHECK_INTERVAL = float(env("CONSOLE_CHECK_INTERVAL", "5"))

# --- The public API (/api/v1/) ------------------------------------------------------------------

# Requests each token may make per window (seconds); beyond it the answer is 429 + Retry-After.
API_RATE_LIMIT = env_int("API_RATE_LIMIT", 300)
API_RATE_WINDOW = env_int("API_RATE_WINDOW", 60)
API_TOKENS_PER_USER = env_int("API_TOKENS_PER_USER", 20)
# How long a POST's Idempotency-Key and its answer are kept.
API_IDEMPOTENCY_HOURS = env_int("API_IDEMPOTENCY_HOURS", 24)

# --- The billing lifecycle (days) --------------------------------------------------------------

# Reminders while an invoice is past due, this many days after the first failed payment.
DUNNING_REMINDER_DAYS = [int(day) for day in env_list("DUNNING_REMINDER_DAYS", "3,7")]
# Past due this long (or Stripe's retries ended: `unpaid`), the server is suspended...
DUNNING_SUSPEND_AFTER_DAYS = float(env("DUNNING_SUSPEND_AFTER_DAYS", "10"))
# ...and suspended this long, the subscription ends and the server is removed.
SUSPENSION_GRACE_DAYS = float(env("SUSPENSION_GRACE_DAYS", "14"))
# audit_consistency gives webhooks and operations this many minutes before it calls a
# difference a violation (a server is being removed, an event waits for a worker).
AUDIT_SETTLE_MINUTES = float(env("AUDIT_SETTLE_MINUTES", "30"))

# --- Outside services ------------------------------------------------------------------------

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env("STRIPE_API_BASE")  # unset means the real api.stripe.com
# Where Stripe's hosted pages (Checkout, customer portal) live; with STRIPE_API_BASE set (a
# stand-in), its pages are served from that address.
STRIPE_PAGE_ORIGINS = (
    [STRIPE_API_BASE.rstrip("/")]
    if STRIPE_API_BASE
    else ["https://checkout.stripe.com", "https://billing.stripe.com"]
)
# Webhook events older than this (seconds) are refused: replayed captures do not count.
STRIPE_WEBHOOK_TOLERANCE = max(1, env_int("STRIPE_WEBHOOK_TOLERANCE", 300))
# Stored events not processed after this long (seconds) are queued again by beat.
STRIPE_EVENT_RETRY_AFTER = env_int("STRIPE_EVENT_RETRY_AFTER", 120)
# ...at most this many attempts in all; then it waits for staff (admin: Stripe events).
STRIPE_EVENT_MAX_ATTEMPTS = env_int("STRIPE_EVENT_MAX_ATTEMPTS", 12)

# --- Money -----------------------------------------------------------------------------------

# Where the seller is established for VAT (billing/vat.py), and the catalog's currency.
SELLER_COUNTRY = env("SELLER_COUNTRY", "DE").upper()
CURRENCY = env("CURRENCY", "EUR").upper()

# --- EU VAT IDs (VIES) -----------------------------------------------------------------------

# The EU's VAT ID service (accounts/vies.py); unset means the real one, ec.europa.eu.
VIES_API_BASE = env("VIES_API_BASE")
# The seller's own VAT ID, named as requester so that VIES gives a consultation number, the
# evidence kept for each reverse charge. Empty: VIES still answers, without one.
SELLER_VAT_ID = env("SELLER_VAT_ID").replace(" ", "").upper()
# Seconds VIES may take: while the customer saves the profile, and when beat asks.
VIES_REQUEST_TIMEOUT = float(env("VIES_REQUEST_TIMEOUT", "3"))
VIES_TIMEOUT = float(env("VIES_TIMEOUT", "10"))
# After VIES gave no answer beat asks again after this long, doubling up to VIES_RETRY_MAX (s)...
VIES_RETRY_BASE = env_int("VIES_RETRY_BASE", 300)
VIES_RETRY_MAX = env_int("VIES_RETRY_MAX", 6 * 3600)
# ...and it asks again about a confirmed VAT ID this many days after VIES confirmed it.
VIES_RECHECK_DAYS = env_int("VIES_RECHECK_DAYS", 365)
# How often beat looks for VAT IDs due (s).
VIES_RECHECK_INTERVAL = env_int("VIES_RECHECK_INTERVAL", 300)

# --- Reverse DNS (PowerDNS Authoritative, instances/powerdns.py) ------------------------------

# The PowerDNS HTTP API (e.g. http://127.0.0.1:8081) and its key; unset: reverse DNS is not
# managed by the portal (no PTRs at build, no card on the server page).
POWERDNS_API_URL = env("POWERDNS_API_URL")
POWERDNS_API_KEY = env("POWERDNS_API_KEY")
POWERDNS_SERVER_ID = env("POWERDNS_SERVER_ID", "localhost")
POWERDNS_TIMEOUT = float(env("POWERDNS_TIMEOUT", "5"))
# Default PTRs are the address under this domain (203-0-113-10.example-hosting.net); TTL of
# the PTRs the portal writes; name servers of the reverse zones `reverse_dns_zones` creates.
REVERSE_DNS_DEFAULT_DOMAIN = env("REVERSE_DNS_DEFAULT_DOMAIN", "example-hosting.net")
REVERSE_DNS_TTL = env_int("REVERSE_DNS_TTL", 3600)
REVERSE_DNS_NAMESERVERS = env_list(
    "REVERSE_DNS_NAMESERVERS", "ns1.example-hosting.net,ns2.example-hosting.net"
)
# Where the forward check at save resolves a customer's PTR name: empty is the system's
# resolver (/etc/resolv.conf); else name servers as `ip` or `ip:port`, comma-separated.
REVERSE_DNS_RESOLVER = env_list("REVERSE_DNS_RESOLVER")
REVERSE_DNS_RESOLVE_TIMEOUT = float(env("REVERSE_DNS_RESOLVE_TIMEOUT", "3"))

# --- Finance exports (billing/exports/) ------------------------------------------------------

# Where exports made by a worker are kept (served to finance only, never as static files).
EXPORT_DIR = Path(env("EXPORT_DIR", str(VAR_DIR / "exports")))
# An export reading more ledger rows than this runs on a worker instead of in the request.
EXPORT_SYNC_MAX_ROWS = env_int("EXPORT_SYNC_MAX_ROWS", 20000)
# Dates, ranges and months of the exports are in this time zone.
EXPORT_TIME_ZONE = env("EXPORT_TIME_ZONE", "Europe/Berlin")
# Last month's exports are mailed here on the 1st (empty: not mailed).
FINANCE_EXPORT_EMAIL = env("FINANCE_EXPORT_EMAIL")
FINANCE_EXPORT_REPORTS = env_list(
    "FINANCE_EXPORT_REPORTS", "invoices,payments,payouts,vat,revenue,datev"
)
FINANCE_EXPORT_FORMAT = env("FINANCE_EXPORT_FORMAT", "xlsx")


def env_mapping(name: str, default: dict[str, str]) -> dict[str, str]:
    """`key=value,key=value` from the environment over the defaults."""
    pairs = (item.split("=", 1) for item in env_list(name) if "=" in item)
    return default | {key.strip(): value.strip() for key, value in pairs}


# DATEV booking export: accounts (SKR03-style defaults; your accountant's chart decides) and
# the tax key (BU-Schlüssel) per VAT treatment; empty where the revenue account is automatic.
DATEV_ACCOUNTS = env_mapping(
    "DATEV_ACCOUNTS",
    {
        "debtors": "10000",
        "stripe_transit": "1360",
        "bank": "1200",
        "fees": "4970",
        "revenue_domestic": "8400",
        "revenue_eu_b2c": "8320",
        "revenue_reverse_charge": "8337",
        "revenue_outside_eu": "8338",
    },
)
DATEV_TAX_KEYS = env_mapping(
    "DATEV_TAX_KEYS", {"domestic": "", "eu_b2c": "", "reverse_charge": "", "outside_eu": ""}
)

# --- Security --------------------------------------------------------------------------------

SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF, *filter(None, [CONSOLE_WEBSOCKET_ORIGIN])],
    # Paying and the customer portal are forms that redirect to Stripe's pages; browsers hold
    # redirects after a form post to form-action too.
    "form-action": [CSP.SELF, *STRIPE_PAGE_ORIGINS, *env_list("CSP_FORM_ACTION_EXTRA")],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 63072000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", not DEBUG)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# allauth's rate limits count per client address. Behind the proxy every request comes from the
# proxy, so ten failed logins a minute from one client would lock everybody out. The client is
# the address our proxy appends to X-Forwarded-For (the Nth from the end with N proxies of ours
# in front), or the header a proxy sets itself (e.g. X-Real-IP, CF-Connecting-IP); never an
# address the client could have written.
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 1 if BEHIND_TLS_PROXY else 0)
ALLAUTH_TRUSTED_CLIENT_IP_HEADER = env("TRUSTED_CLIENT_IP_HEADER") or None

# --- Static files, i18n, logging -------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
        )
    },
}

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # proxmoxer logs request bodies (a cloud-init password among them) at INFO.
        "proxmoxer": {"level": "WARNING"},
        # stripe logs every request line at INFO.
        "stripe": {"level": "WARNING"},
    },
}
