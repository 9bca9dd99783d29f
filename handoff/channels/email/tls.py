"""The TLS client context both mail connections use: certificates are always verified.

It trusts the system's CAs, plus `ca_file` (PEM) when one is given — HANDOFF_EMAIL_CA_FILE,
for servers whose certificate a private CA signed. Hostname checking stays on (Python's
`ssl.create_default_context`); there is no switch to turn verification off.
"""

from __future__ import annotations

import ssl


def client_context(ca_file: str = "") -> ssl.SSLContext:
    """A verifying client context trusting the system CAs and, if given, the CAs in `ca_file`."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def untrusted(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind `exc` (itself or a cause), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
