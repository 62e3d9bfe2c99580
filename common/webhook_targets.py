"""Where a webhook may be sent: https:// URLs whose host resolves only to public
addresses, so that whoever configures an endpoint cannot make the worker call the
services of our own network (databases, the cloud's metadata address, admin pages
on loopback). BILLING_WEBHOOK_ALLOWED_HOSTS names the exceptions (a receiver on
localhost in development, the tests' receiver); those may use http:// too.

The URL is checked when an endpoint is saved and again before every send, since
its DNS can change in between. A send connects to the very addresses it checked
(webhook_target_resolve returns them), never resolving the name a second time: a
DNS server that answers a public address to the check and a private one to the
connection gets one question only.

Refusals say why in a short fixed text (WebhookTargetRefused.message), which is
what the admin shows: it names an address only when the URL itself wrote it, so
that the check does not tell an admin what our internal names resolve to.
"""

import ipaddress
import socket
from dataclasses import dataclass
from socket import getaddrinfo  # a module-level name, which tests replace to play DNS
from urllib.parse import urlsplit

from django.conf import settings

from common.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6052's well-known NAT64 prefix: a gateway translates 64:ff9b::a.b.c.d to
# the IPv4 address a.b.c.d, which is what has to be public.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookTargetRefused(InvalidRequest):
    """The URL is not one a webhook may be sent to. The message is one of a few
    fixed texts (plus an address the URL wrote), never anything a receiver sent."""


@dataclass(frozen=True)
class WebhookTarget:
    """A URL that passed the checks, with the addresses its host resolved to."""

    scheme: str
    # As the URL writes it: sent as the Host header and the TLS server name.
    host: str
    port: int
    # The path and query to request.
    path: str
    # getaddrinfo's (family, type, proto, sockaddr) of every address checked;
    # the send connects to these and to nothing else.
    addresses: tuple[tuple[int, int, int, tuple], ...]


def address_is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet: not loopback, private
    (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the
    cloud metadata address, fe80::/10), shared (100.64/10), unspecified,
    multicast, reserved or documentation; an IPv6 address that carries an IPv4
    one (mapped, NAT64, 6to4) is public only when that IPv4 address is."""
    if isinstance(address, ipaddress.IPv6Address):
        # Judged by their IPv4 address: ipaddress calls ::ffff:8.8.8.8 "reserved",
        # and how it classifies these has changed between Python releases.
        if address.ipv4_mapped is not None:
            return address_is_public(address.ipv4_mapped)
        if address in _NAT64:
            return address_is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.sixtofour is not None and not address_is_public(address.sixtofour):
            return False
        # fec0::/10, deprecated but still routed inside some networks.
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )


def _host_key(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def webhook_host_allowed(host: str) -> bool:
    """Whether BILLING_WEBHOOK_ALLOWED_HOSTS names the host (any address, http:// too)."""
    return _host_key(host) in {_host_key(h) for h in settings.BILLING_WEBHOOK_ALLOWED_HOSTS}


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def webhook_target_resolve(*, url: str) -> WebhookTarget:
    """Check a webhook URL and resolve its host (the system resolver, once).
    Raises WebhookTargetRefused unless the URL is https:// (or http:// to an
    allowed host), carries no user name or password, and its host resolves to
    addresses that are all public (any address for an allowed host). Does not
    connect anywhere."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https"):
        raise WebhookTargetRefused("must be an https:// URL")
    if not host:
        raise WebhookTargetRefused("the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookTargetRefused("the URL's port is not valid") from None
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("the URL must not contain a user name or password")
    allowed = webhook_host_allowed(host)
    if parts.scheme != "https" and not allowed:
        raise WebhookTargetRefused("must be an https:// URL")

    try:
        resolved = getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        resolved = []
    addresses = tuple(
        (family, kind, proto, sockaddr)
        for family, kind, proto, _, sockaddr in resolved
        if family in (socket.AF_INET, socket.AF_INET6)
    )
    if not addresses:
        raise WebhookTargetRefused("the host does not resolve")
    if not allowed:
        for *_, sockaddr in addresses:
            # An IPv6 sockaddr may name its interface ("fe80::1%eth0").
            if not address_is_public(ipaddress.ip_address(sockaddr[0])):
                # The address is named only when the URL wrote it.
                if _literal_address(host) is not None:
                    raise WebhookTargetRefused(f"address {host} is not public")
                raise WebhookTargetRefused("the host resolves to an address that is not public")

    path = parts.path or "/"
    return WebhookTarget(
        scheme=parts.scheme,
        host=host,
        port=port,
        path=f"{path}?{parts.query}" if parts.query else path,
        addresses=addresses,
    )
