"""A throwaway certificate authority for a sandbox, made with trustme.

The sandbox serves real HTTPS so that the real client libraries run their real TLS code;
the client trusts the sandbox only through the config's ``ca_bundle`` (never by turning
verification off).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class SandboxTls:
    ca_bundle: Path
    server_context: ssl.SSLContext


def make_tls(directory: Path) -> SandboxTls:
    """Create a CA and a server certificate for 127.0.0.1/localhost; write the CA to
    ``directory/ca.pem`` for clients to trust."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return SandboxTls(ca_bundle=ca_path, server_context=context)
