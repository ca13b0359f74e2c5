"""Which addresses the server may connect to: the SSRF rule every fetch and delivery follows.

Public unicast addresses are allowed; private, loopback, link-local, multicast and the other
special-purpose ranges are refused unless ALLOWED_PRIVATE_ADDRESSES lists them. IPv6 forms that
deliver to an IPv4 address (mapped, 6to4, NAT64) are judged by where they deliver.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 6598 shared address space: carrier-grade NAT, reachable only inside a provider's network.
# Python's `is_private` does not cover it.
_SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
# RFC 6052 well-known NAT64 prefix: on a NAT64 network 64:ff9b::7f00:1 reaches 127.0.0.1.
_NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class ForbiddenAddressError(httpx.ConnectError):
    """A connection the SSRF guard refused: the address is not public and not explicitly allowed."""

    def __init__(self, *, address: str, host: str, reason: str, request: httpx.Request | None = None) -> None:
        super().__init__(f"refusing to connect to {address} ({reason}) for {host}", request=request)
        self.address = address
        self.host = host
        self.reason = reason


def _parse_address(address: str) -> IPAddress:
    """`ipaddress.ip_address`, with the C parser first: a fan-out checks one address per new
    connection, and `ipaddress` parses a dotted quad in Python, octet by octet."""
    try:
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, address))
    except (OSError, ValueError):
        return ipaddress.ip_address(address)  # IPv6, or not an address (ValueError)


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address delivers to, for the forms the kernel or network translate."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _special_purpose(ip: IPAddress) -> str | None:
    """Why `ip` is not a public unicast address, or None when it is."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _SHARED_ADDRESS_SPACE:
        return "shared address space"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    # Catches the remaining special-purpose ranges (documentation, benchmarking, Teredo…);
    # the exact list varies between Python releases, the checks above do not.
    if not ip.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses the server may connect to: public unicast ones, plus `allowed` networks."""

    allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, address: str | IPAddress) -> str | None:
        """Why connecting to `address` is refused, or None when it is allowed."""
        try:
            ip = _parse_address(address) if isinstance(address, str) else address
        except ValueError:
            return "not an IP address"
        embedded = _embedded_ipv4(ip)
        candidates = (ip,) if embedded is None else (ip, embedded)
        if any(candidate in network for network in self.allowed for candidate in candidates):
            return None
        if embedded is not None:
            # Python files IPv4-mapped addresses under private and NAT64 under reserved; what
            # matters for those is where they deliver. A DNS64 network hands out NAT64 addresses
            # for every public IPv4-only host.
            translated = isinstance(ip, ipaddress.IPv6Address) and (
                ip.ipv4_mapped is not None or ip in _NAT64_PREFIX
            )
            own = None if translated else _special_purpose(ip)
            return own or _special_purpose(embedded)
        return _special_purpose(ip)

    def is_allowed(self, address: str | IPAddress) -> bool:
        return self.refusal(address) is None

    def check(self, address: str | IPAddress, host: str) -> None:
        reason = self.refusal(address)
        if reason is not None:
            raise ForbiddenAddressError(address=str(address), host=host, reason=reason)


def ip_literal(host: str) -> IPAddress | None:
    """The address `host` is, when it is an IP address rather than a name (as a URL's host gives
    it, without brackets); None for a name.

    Names are told apart without a parse, for this runs once per request or new connection: a
    host name never contains ":" and in practice never starts with a digit (a digit-led name just
    costs one failed parse).
    """
    if ":" not in host and not host[:1].isdigit():
        return None
    try:
        return _parse_address(host)
    except ValueError:
        return None


def ascii_hostname(hostname: str) -> str:
    """A host name as it goes on the wire and into a signed Host header: IDNA (punycode) for an
    internationalised name (`bücher.example` → `xn--bcher-kva.example`), lower case.

    Raises UnicodeError for a name that cannot be one (an empty or over-long label).
    """
    if hostname.isascii() and ".." not in hostname:
        return hostname.lower()
    return hostname.encode("idna").decode("ascii").lower()


# RFC 1035: a label holds 1 to 63 octets, a name at most 253 in its dotted text form.
MAX_LABEL_LENGTH = 63
MAX_HOSTNAME_LENGTH = 253
# Letters, digits and hyphens (RFC 1123), and the underscore some real hosts carry anyway.
_LABEL_CHARACTERS = re.compile(r"[a-z0-9_-]+")


def hostname_problem(hostname: str) -> str | None:
    """Why `hostname` (without a port) cannot name a host, in words; None when it can.

    Checked where a name comes from a person or a document, before it reaches DNS: the resolver
    raises UnicodeError for an empty or over-long label, far from where the name was written.
    """
    if hostname.startswith("[") and hostname.endswith("]"):
        return None if ip_literal(hostname[1:-1]) is not None else "is not an IPv6 address"
    if ip_literal(hostname) is not None:
        return None
    labels = hostname.split(".")
    if not hostname or any(not label for label in labels):
        return "has an empty part between dots"
    try:
        encoded = [ascii_hostname(label) for label in labels]
        for label in encoded:
            if label.startswith("xn--"):
                label.encode("ascii").decode("idna")  # a made-up punycode label does not decode
    except UnicodeError:
        return "is not a valid internationalised domain name"
    if any(not _LABEL_CHARACTERS.fullmatch(label) for label in encoded):
        return "contains characters a host name cannot have"
    if any(label.startswith("-") or label.endswith("-") for label in encoded):
        return "has a part that starts or ends with a hyphen"
    if any(len(label) > MAX_LABEL_LENGTH for label in encoded):
        return f"has a part longer than {MAX_LABEL_LENGTH} characters"
    if len(".".join(encoded)) > MAX_HOSTNAME_LENGTH:
        return f"is longer than {MAX_HOSTNAME_LENGTH} characters"
    return None


def host_header(host: str, port: int | None, scheme: str) -> str:
    """The Host header's value, which is what gets signed too: `host` as `ascii_hostname` gives
    it, bracketed when it is an IPv6 address, and the port unless it is the scheme's default."""
    name = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS.get(scheme.lower()):
        return f"{name}:{port}"
    return name
