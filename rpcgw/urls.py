"""Checks on URLs that rpcgw will call (webhooks, status URLs).

Static checks happen when a URL is given (scheme, host, literal private addresses);
the delivery engine repeats the address check after resolving the name, at connect
time, so a name that later resolves to a private address is refused too.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


class UrlRefused(ValueError):
    pass


def is_private_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


def check_endpoint(url: str, *, allow_private: bool) -> str:
    """Return ``url`` if rpcgw may POST to it, else raise UrlRefused saying why."""
    if not isinstance(url, str) or len(url) > 2048:
        raise UrlRefused("must be a URL of at most 2048 characters")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise UrlRefused(f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused("must be an http or https URL")
    if not host:
        raise UrlRefused("has no host")
    if parts.username or parts.password:
        raise UrlRefused("must not embed credentials; use a signing secret instead")
    if not allow_private:
        if host == "localhost" or host.endswith(".localhost"):
            raise UrlRefused("points to this machine (loopback); the operator did not "
                             "allow private endpoints")
        try:
            private = is_private_address(host)
        except ValueError:
            private = False  # a name: checked again once resolved, at connect time
        if private:
            raise UrlRefused(f"points to a private or reserved address ({host}); the "
                             "operator did not allow private endpoints")
    return url.strip()
