"""Start ``phoenix serve`` with its gRPC receiver on loopback (run by the Phoenix venv's Python).

Phoenix binds its OTLP/gRPC port on every interface (``[::]``) and has no
setting for its host; the interop tests send over HTTP only, so the gRPC
listener is moved to 127.0.0.1 before the server starts. Nothing else of
Phoenix is changed.
"""

from __future__ import annotations

import sys

import grpc.aio._server as grpc_server

_add_insecure_port = grpc_server.Server.add_insecure_port


def _loopback_only(self: grpc_server.Server, address: str) -> int:
    port = address.rpartition(":")[2]
    return _add_insecure_port(self, f"127.0.0.1:{port}")


grpc_server.Server.add_insecure_port = _loopback_only  # type: ignore[method-assign]

if __name__ == "__main__":
    from phoenix.server.main import main

    sys.argv = ["phoenix", "serve"]
    main()
