"""SSRF guard for endpoint URLs: https only, and every address the host resolves to must be public.

Checked when an endpoint is registered and again before every delivery (DNS can change in between), and
the delivery then connects to one of the addresses that passed, never resolving the name a second time, so
a rebinding DNS server cannot swap in an internal address between the check and the connection.
EVENTS_ALLOW_LOCAL_URLS (local and test settings only) also allows http and loopback addresses, so a local
receiver can be used; private, link-local, multicast and reserved ranges stay refused even then.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from wallet.events.errors import EndpointUrlRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query string
    addresses: tuple[str, ...]  # every one checked


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an acceptable URL, without resolving it.

    :raises EndpointUrlRefusedError: not an absolute http(s) URL we may call.
    """
    allow_local = settings.EVENTS_ALLOW_LOCAL_URLS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointUrlRefusedError("The endpoint URL cannot be parsed.") from exc
    schemes = {"https", "http"} if allow_local else {"https"}
    if parts.scheme not in schemes:
        raise EndpointUrlRefusedError("The endpoint URL must use https.")
    if not parts.hostname:
        raise EndpointUrlRefusedError("The endpoint URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise EndpointUrlRefusedError("The endpoint URL must not carry credentials.")
    if parts.fragment:
        raise EndpointUrlRefusedError("The endpoint URL must not have a fragment.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname, port or default_port, path


def refusal(address: IPAddress) -> str | None:
    """Why an address must not be called, or None if it is a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return refusal(address.ipv4_mapped)  # ::ffff:127.0.0.1 is 127.0.0.1
    if address.is_loopback:
        return None if settings.EVENTS_ALLOW_LOCAL_URLS else "loopback"
    for reason, flagged in (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),  # before private: Python counts 240/4 as both
        ("private", address.is_private),
    ):
        if flagged:
            return reason
    if not address.is_global:  # shared (100.64/10), documentation, benchmarking and the like
        return "not globally routable"
    return None


def resolve(url: str) -> Target:
    """Parse and resolve the URL; every address must pass `refusal`.

    :raises EndpointUrlRefusedError: a bad URL, a name that does not resolve, or any refused address.
    """
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # ValueError: a NUL in the name
        raise EndpointUrlRefusedError(f"The endpoint host {host!r} does not resolve.") from exc
    addresses: list[str] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # an IPv6 zone id is not part of the address
        address = ipaddress.ip_address(raw)
        reason = refusal(address)
        if reason is not None:
            raise EndpointUrlRefusedError(
                f"The endpoint host {host!r} resolves to a {reason} address ({address}).",
                details={"address": str(address), "reason": reason},
            )
        if raw not in addresses:
            addresses.append(raw)
    if not addresses:
        raise EndpointUrlRefusedError(f"The endpoint host {host!r} does not resolve.")
    return Target(scheme=scheme, host=host, port=port, path=path, addresses=tuple(addresses))
