"""Helpers for tests across apps."""

import socket


def unused_port() -> int:
    """A loopback port that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
