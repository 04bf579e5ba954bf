"""`python -m bot.sandbox.pagerduty [--routing-key KEY] [--port 8095]`: a local PagerDuty."""

from __future__ import annotations

import argparse
import logging
import secrets

import uvicorn

from bot.sandbox.pagerduty.app import PagerDutyState, create_app
from bot.sandbox.pagerduty.server import QuietDrops


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.sandbox.pagerduty", description=__doc__)
    parser.add_argument("--routing-key", default=None, help="32 letters/digits; random if unset")
    parser.add_argument("--port", type=int, default=8095)
    args = parser.parse_args(argv)
    key = args.routing_key or secrets.token_hex(16)
    if args.routing_key is None:
        print(f"SHIPYARD_PAGERDUTY_ROUTING_KEY={key}")  # a throwaway key for a local double
    print(f"SHIPYARD_PAGERDUTY_EVENTS_URL=http://127.0.0.1:{args.port}")
    logging.getLogger("uvicorn.error").addFilter(QuietDrops())
    uvicorn.run(create_app(PagerDutyState(key)), host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
