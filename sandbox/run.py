"""The dev runner behind `make run`: starts every process the demo needs and stops them together.

Processes: the demo Proxmox cluster (fakepve, sandbox/pve.py; started first, so it is up when a
build begins), the Django dev server and a Celery worker with beat. Later stand-ins (the Stripe
sandbox) join the PROCESSES list. Ctrl-C (or any process dying) stops all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

PYTHON = sys.executable
HOST = os.environ.get("PORTAL_HOST", "127.0.0.1")
PORT = os.environ.get("PORTAL_PORT", "8000")

PROCESSES = {
    "fakepve": [PYTHON, "-m", "sandbox.pve", "serve"],
    "web": [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}"],
    "worker": [
        PYTHON, "-m", "celery", "-A", "portal", "worker", "--beat",
        "--loglevel=INFO", "--concurrency=2",
        "--schedule", os.path.join("var", "celerybeat-schedule"),
    ],
}  # fmt: skip


def main() -> int:
    os.makedirs("var", exist_ok=True)
    children: dict[str, subprocess.Popen] = {}
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in PROCESSES.items():
        # Each child gets its own process group, so the terminal's Ctrl-C reaches only us and
        # we stop them in order.
        children[name] = subprocess.Popen(command, start_new_session=True)
        print(f"[run] started {name} (pid {children[name].pid})", flush=True)
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


if __name__ == "__main__":
    sys.exit(main())
