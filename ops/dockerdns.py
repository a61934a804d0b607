"""Who is this container? A reverse (PTR) lookup asked of the DNS servers in /etc/resolv.conf.

Under compose, Docker's embedded DNS (127.0.0.11) answers the PTR of a container's address with
`<project>-<service>-<n>.<network>`. `socket.gethostbyaddr` cannot be used for it: glibc reads
/etc/hosts first, where Docker maps the address to the container id. So the question goes to the
nameservers directly, through dnspython's resolver (which reads resolv.conf for its nameservers
and never /etc/hosts); it replaced a hand-written RFC 1035 query and parser (issue 20).
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.exception
import dns.nameserver
import dns.resolver
import dns.reversename

RESOLV_CONF = "/etc/resolv.conf"


def nameservers(path: str = RESOLV_CONF) -> list[tuple[str, int]]:
    """The `nameserver` addresses of resolv.conf and their port (53); [] without any."""
    try:
        resolver = dns.resolver.Resolver(filename=path)
    except dns.resolver.NoResolverConfiguration:
        return []
    return [(str(server), resolver.port) for server in resolver.nameservers]


def reverse_name(
    address: str, servers: Sequence[tuple[str, int]] | None = None, timeout: float = 1.0
) -> str:
    """The PTR name of an IPv4 `address`, without the trailing dot; OSError if none answers.
    `servers`: (address, port) pairs to ask instead of resolv.conf's."""
    try:
        name = dns.reversename.from_address(address)
        if servers is None:
            resolver = dns.resolver.Resolver(filename=RESOLV_CONF)
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [dns.nameserver.Do53Nameserver(host, port)
                                    for host, port in servers]  # fmt: skip
        if not resolver.nameservers:
            raise OSError(f"no nameserver to ask for {address}")
        answer = resolver.resolve(name, "PTR", lifetime=timeout, search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as error:
        raise OSError(f"no PTR record for {address} ({type(error).__name__})") from error
    except (dns.exception.DNSException, ValueError) as error:  # no server, timeout, bad address
        raise OSError(f"reverse lookup of {address}: {error}") from error
    return str(answer[0].target).rstrip(".")
