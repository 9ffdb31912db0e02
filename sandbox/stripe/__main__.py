"""`python -m sandbox.stripe serve [...]`: the Stripe sandbox in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .server import StripeSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.stripe")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sandbox until interrupted")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument(
        "--port", type=int, default=int(os.environ.get("STRIPE_SANDBOX_PORT", 12111))
    )
    serve.add_argument("--api-key", default="sk_test_sandbox")
    serve.add_argument("--webhook-url", default=None)
    serve.add_argument("--webhook-secret", default="whsec_sandbox")
    serve.add_argument("--public-url", default=None, help="base URL browsers use (pages)")
    serve.add_argument("--retry-base", type=float, default=2.0, help="first webhook retry (s)")
    serve.add_argument(
        "--state-file", type=Path, default=None, help="keep objects here across restarts"
    )
    args = parser.parse_args(argv)
    sandbox = StripeSandbox(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        retry_base=args.retry_base,
        public_url=args.public_url,
        state_file=args.state_file,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"[stripe] sandbox on {sandbox.url}, webhooks to {args.webhook_url}", flush=True)
    try:
        sandbox.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        sandbox.webhooks.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
