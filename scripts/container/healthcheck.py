"""The image's HEALTHCHECK: asks the process this container runs (entrypoint.sh records which).

web: GET /healthz on $PORT with an allowed Host header; sandbox: its /_sandbox/health; worker and beat
have no port, so their container is healthy while the process runs (compose pings the worker itself).
"""

import http.client
import os
import sys
from pathlib import Path


def _get(port: int, path: str, host: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=4)
    try:
        connection.request("GET", path, headers={"Host": host, "X-Forwarded-Proto": "https"})
        return connection.getresponse().status
    finally:
        connection.close()


def main() -> int:
    role_file = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/wallet/role")  # noqa: S108
    role = role_file.read_text().strip() if role_file.exists() else "unknown"
    try:
        if role == "web":
            bind = os.environ.get("WEB_BIND", "")
            port = int(bind.rsplit(":", 1)[1]) if bind else int(os.environ.get("PORT", "8000"))
            hosts = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if h.strip()]
            host = next((h.lstrip(".") for h in hosts if h != "*"), "localhost")
            status = _get(port, "/healthz", host)
        elif role == "sandbox":
            status = _get(int(os.environ.get("REVIO_SANDBOX_PORT", "8100")), "/_sandbox/health", "localhost")
        elif role in {"worker", "beat"}:
            return 0
        else:
            print(f"healthcheck: no process recorded in {role_file}", file=sys.stderr)
            return 1
    except (OSError, ValueError) as exc:
        print(f"healthcheck: {role}: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"healthcheck: {role} answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
