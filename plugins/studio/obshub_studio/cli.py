"""``obshub studio [--db FILE] [--port N] [--no-browser]``: registered through the commands hook."""

from __future__ import annotations

import argparse
import os
import webbrowser
from typing import TextIO

from obshub_studio.exporter import DEFAULT_DB
from obshub_studio.server import StudioServer
from obshub_studio.store import Store

__all__ = ["DB_ENV_VAR", "DEFAULT_PORT", "add_arguments", "run_studio"]

#: The port ``obshub studio`` listens on unless given ``--port`` (0: any free port).
DEFAULT_PORT = 7878
#: Environment variable naming the store when ``--db`` is not given.
DB_ENV_VAR = "OBSHUB_STUDIO_DB"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        metavar="FILE",
        help=f"the sqlite store (default: ${DB_ENV_VAR}, else ./{DEFAULT_DB})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}; 0 picks a free one)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; anything else exposes your traces)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open a browser, only print the URL"
    )
    parser.add_argument(
        "--import",
        dest="import_path",
        metavar="PATH",
        help="first import a JSONL file, spool segment or spool directory into the store",
    )


def run_studio(args: argparse.Namespace, out: TextIO) -> int:
    db = args.db or os.environ.get(DB_ENV_VAR) or DEFAULT_DB
    if args.import_path:
        store = Store(db)
        try:
            stored, bad = store.import_file(args.import_path)
        except OSError as exc:
            out.write(f"cannot import {args.import_path}: {exc.strerror or exc}\n")
            return 2
        finally:
            store.close()
        out.write(f"imported {stored} records from {args.import_path} into {db}")
        out.write(f" ({bad} unreadable lines skipped)\n" if bad else "\n")
    try:
        server = StudioServer(db, host=args.host, port=args.port)
    except OSError as exc:
        out.write(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
        return 2
    url = server.url
    out.write(f"obshub studio: {db} on {url}  (Ctrl-C to stop)\n")
    out.flush()
    if not args.no_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        out.write("stopped\n")
    finally:
        server.server_close()
    return 0
