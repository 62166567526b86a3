"""Helpers for tests across apps."""

import os
import socket


def unused_port() -> int:
    """A loopback port that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proof_profile() -> str:
    """The proof suite's profile: "default" (make test, sized for CI) or "slow" (make test-slow, nightly).

    Tests scale their example counts, mutants and thread counts with it; no test is left out of either.
    """
    profile = os.environ.get("PROOF_PROFILE", "default")
    if profile not in {"default", "slow"}:
        raise ValueError(f"PROOF_PROFILE must be default or slow, not {profile!r}")
    return profile


def proof_size(default: int, slow: int) -> int:
    """How many examples/mutants/threads a proof test runs in the current profile."""
    return slow if proof_profile() == "slow" else default
