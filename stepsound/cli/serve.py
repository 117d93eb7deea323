"""``stepsound serve``: the session history in the browser (until Ctrl-C)."""
from __future__ import annotations

import argparse
import sys
import time

from stepsound.web.server import DEFAULT_PORT, WebServer, parse_web_address, print_qr


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="PATH", help="session database (default: in the user data dir)")
    p.add_argument("--web", default=f"127.0.0.1:{DEFAULT_PORT}", metavar="[HOST:]PORT",
                   help=f"where to serve (default 127.0.0.1:{DEFAULT_PORT}; any other address than loopback "
                        "needs the token printed with the URL)")


def run(args: argparse.Namespace) -> int:
    from stepsound.web.history import HistoryApp

    address = parse_web_address(args.web)
    server = WebServer(address, HistoryApp(args.db), command="serve").start()
    try:
        urls = server.urls()
        for url in urls:
            print(f"stepsound: session history at {url}", file=sys.stderr, flush=True)
        if server.token is not None:
            print("stepsound: the link holds an access token: anyone with it can see your sessions",
                  file=sys.stderr, flush=True)
            if urls:
                print_qr(urls[0], sys.stderr)
        print("stepsound: Ctrl-C stops the server", file=sys.stderr, flush=True)
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("stepsound: server stopped", file=sys.stderr)
        return 130
    finally:
        server.close()
