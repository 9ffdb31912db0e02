"""The dev runner behind `make run`: starts every process the demo needs and stops them together.

Processes: the demo Proxmox cluster (fakepve, sandbox/pve.py), the Stripe sandbox
(sandbox/stripe/), the VIES stand-in (sandbox/vies.py) and PowerDNS (sandbox/powerdns.py, the
real server) first; once the Stripe sandbox and PowerDNS answer, `seed_demo` (demo users, the
demo cluster's rows, the pool's reverse zones in PowerDNS, the catalog pushed to the sandbox);
then the Django dev server, the console's websocket proxy (uvicorn, port 8001) and a Celery worker
with beat. Ctrl-C (or any process dying) stops all of them.

The portal is pointed at the sandbox the way it would be pointed at Stripe: STRIPE_API_BASE,
STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET in the environment (defaults below unless set); and
at the VIES stand-in with VIES_API_BASE (and the demo seller's SELLER_VAT_ID) unless it is set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

PYTHON = sys.executable
VAR_DIR = os.environ.get("VAR_DIR", "var")  # as the portal's settings
HOST = os.environ.get("PORTAL_HOST", "127.0.0.1")
PORT = os.environ.get("PORTAL_PORT", "8000")
# The browser console's websocket proxy (portal/asgi.py under uvicorn), beside the dev server.
CONSOLE_PORT = os.environ.get("CONSOLE_PORT", "8001")

STRIPE_PORT = os.environ.get("STRIPE_SANDBOX_PORT", "12111")
VIES_PORT = os.environ.get("VIES_SANDBOX_PORT", "12112")
# PowerDNS Authoritative (the real one, sandbox/powerdns.py): its API and its DNS port.
POWERDNS_API_PORT = os.environ.get("POWERDNS_SANDBOX_API_PORT", "12113")
POWERDNS_DNS_PORT = os.environ.get("POWERDNS_SANDBOX_DNS_PORT", "12153")
POWERDNS_ENV = {
    "POWERDNS_API_URL": f"http://127.0.0.1:{POWERDNS_API_PORT}",
    "POWERDNS_API_KEY": "pdns-sandbox-key",
    # The forward check asks the demo's PowerDNS, which serves the names it knows (README).
    "REVERSE_DNS_RESOLVER": f"127.0.0.1:{POWERDNS_DNS_PORT}",
}
VIES_ENV = {
    "VIES_API_BASE": f"http://127.0.0.1:{VIES_PORT}/rest-api",
    # The demo seller's VAT ID, registered in the stand-in: VIES gives consultation numbers.
    "SELLER_VAT_ID": "DE123456788",
}
STRIPE_ENV = {
    "STRIPE_API_BASE": f"http://127.0.0.1:{STRIPE_PORT}",
    "STRIPE_SECRET_KEY": "sk_test_sandbox",
    "STRIPE_WEBHOOK_SECRET": "whsec_sandbox",
}
WEBHOOK_URL = f"http://{HOST}:{PORT}/billing/stripe/webhook/"

# Started in this order; SEED runs between the stand-ins and the portal.
STAND_INS = {
    "fakepve": [PYTHON, "-m", "sandbox.pve", "serve"],
    "stripe": [
        PYTHON, "-m", "sandbox.stripe", "serve", "--port", STRIPE_PORT,
        "--webhook-url", WEBHOOK_URL,
        "--state-file", os.path.join(VAR_DIR, "stripe-sandbox.pickle"),
    ],
    "vies": [PYTHON, "-m", "sandbox.vies", "serve", "--port", VIES_PORT],
    "powerdns": [
        PYTHON, "-m", "sandbox.powerdns", "serve",
        "--api-port", POWERDNS_API_PORT, "--dns-port", POWERDNS_DNS_PORT,
    ],
}  # fmt: skip
SEED = [
    PYTHON, "manage.py", "seed_demo",
    "--pve-cluster", os.path.join(VAR_DIR, "fakepve", "cluster.json"),
]  # fmt: skip
PROCESSES = {
    "web": [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}"],
    "console": [
        PYTHON, "-m", "uvicorn", "portal.asgi:application",
        "--host", HOST, "--port", CONSOLE_PORT, "--no-access-log",
    ],
    "worker": [
        PYTHON, "-m", "celery", "-A", "portal", "worker", "--beat",
        "--queues=operations,billing,maintenance,exports,celery",
        "--loglevel=INFO", "--concurrency=2",
        "--schedule", os.path.join(VAR_DIR, "celerybeat-schedule"),
    ],
}  # fmt: skip


def main() -> int:
    os.makedirs(VAR_DIR, exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if not os.environ.get("STRIPE_SECRET_KEY"):  # no real Stripe configured: the sandbox
        os.environ.update(STRIPE_ENV)
    if not os.environ.get("VIES_API_BASE"):  # no VIES configured: the stand-in
        os.environ["VIES_API_BASE"] = VIES_ENV["VIES_API_BASE"]
        if not os.environ.get("SELLER_VAT_ID"):
            os.environ["SELLER_VAT_ID"] = VIES_ENV["SELLER_VAT_ID"]
    if not os.environ.get("POWERDNS_API_URL"):  # no PowerDNS configured: our own
        os.environ.update({k: v for k, v in POWERDNS_ENV.items() if not os.environ.get(k)})
    else:  # a PowerDNS of your own: this runner starts none
        STAND_INS.pop("powerdns")
    # Pages open the console's websocket there (the same host as the pages: the login cookie).
    os.environ.setdefault("CONSOLE_WEBSOCKET_ORIGIN", f"ws://{HOST}:{CONSOLE_PORT}")
    # The sandbox signs webhooks with the secret the portal checks.
    STAND_INS["stripe"] += ["--webhook-secret", os.environ["STRIPE_WEBHOOK_SECRET"]]

    def start(name: str, command: list[str]) -> None:
        # Each child gets its own process group, so the terminal's Ctrl-C reaches only us and
        # we stop them in order.
        children[name] = subprocess.Popen(command, start_new_session=True)
        print(f"[run] started {name} (pid {children[name].pid})", flush=True)

    for name, command in STAND_INS.items():
        start(name, command)
    if not _stand_ins_answer(children):
        stopping = True
    elif subprocess.run(SEED).returncode != 0:
        print("[run] seed_demo failed; stopping", flush=True)
        stopping = True
    if not stopping:
        for name, command in PROCESSES.items():
            start(name, command)
    print(f"[run] portal on http://{HOST}:{PORT}/ — Ctrl-C stops everything", flush=True)
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"[run] {name} exited with {child.returncode}; stopping the rest", flush=True)
                exit_code = child.returncode or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("[run] stopped", flush=True)
    return exit_code


def _stand_ins_answer(children: dict[str, subprocess.Popen]) -> bool:
    """The Stripe sandbox and PowerDNS (when this runner started it) answer on their ports."""
    waits = [
        ("stripe", int(STRIPE_PORT), "the Stripe sandbox"),
        ("powerdns", int(POWERDNS_API_PORT), "PowerDNS"),
    ]
    return all(
        _wait_for_port(port, children[name], name=label)
        for name, port, label in waits
        if name in children
    )


def _wait_for_port(
    port: int, child: subprocess.Popen, timeout: float = 20, name: str = "the Stripe sandbox"
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    print(f"[run] {name} did not start on port {port}; stopping", flush=True)
    return False


if __name__ == "__main__":
    sys.exit(main())
