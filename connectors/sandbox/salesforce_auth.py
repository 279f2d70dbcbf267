"""The Salesforce sandbox's OAuth 2.0 token endpoint (``/services/oauth2/token``): the
client credentials flow and the JWT bearer flow, as a connected app answers them (OAuth
2.0 Client Credentials Flow and OAuth 2.0 JWT Bearer Flow, Salesforce Help). An issued
token joins the sandbox's session set, which every data route checks. The connected app's
credentials (``ConnectedApp``) live here too: they are what this endpoint checks.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.sandbox.salesforce_wire import ORG_ID, make_id
from connectors.sandbox.server import Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.salesforce import SalesforceSandbox

JWT_USERNAME = "integration@crmtier.sandbox"


class ConnectedApp:
    """The org's connected app: the client id and secret of the client credentials flow
    and the certificate key of the JWT bearer flow. Kept in the sandbox's data directory,
    so a restarted sandbox accepts the credentials it printed before."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.client_id, self.client_secret = self._credentials()
        self._jwt_public: Any = None

    def _credentials(self) -> tuple[str, str]:
        path = self.data_dir / "credentials.json"
        if path.exists():
            saved = json.loads(path.read_text("utf-8"))
            return saved["client_id"], saved["client_secret"]
        client_id = "3MVG9" + secrets.token_urlsafe(30).replace("-", "A").replace("_", "B")
        client_secret = secrets.token_hex(32)
        path.write_text(json.dumps({"client_id": client_id, "client_secret": client_secret}))
        path.chmod(0o600)
        return client_id, client_secret

    @property
    def jwt_key_path(self) -> Path:
        """The connected app's certificate key: the private half is what an admin gives
        crmtier for the JWT bearer flow; the org verifies with the public half. Made on
        first use (RSA key generation is the slowest part of starting a sandbox)."""
        path = self.data_dir / "jwt_private_key.pem"
        if not path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            path.chmod(0o600)
        return path

    def jwt_public_key(self) -> Any:
        if self._jwt_public is None:
            private = serialization.load_pem_private_key(
                self.jwt_key_path.read_bytes(), password=None
            )
            self._jwt_public = private.public_key()
        return self._jwt_public


def token_endpoint(sandbox: SalesforceSandbox, request: Request) -> Response:
    form = {k: v[0] for k, v in _form(request).items()}
    grant = form.get("grant_type")
    if grant == "client_credentials":
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = request.header("Authorization", "") or ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        ok = hmac.compare_digest(client_id, sandbox.app.client_id) and hmac.compare_digest(
            client_secret, sandbox.app.client_secret
        )
        if not ok:
            return Response.json(
                {"error": "invalid_client", "error_description": "invalid client credentials"},
                400,
            )
    elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                sandbox.app.jwt_public_key(),
                algorithms=["RS256"],
                audience=[
                    "https://login.salesforce.com",
                    "https://test.salesforce.com",
                    sandbox.server.base_url,
                ],
                options={"require": ["exp", "iss", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            return Response.json({"error": "invalid_grant", "error_description": str(exc)}, 400)
        if claims.get("iss") != sandbox.app.client_id or claims.get("sub") != JWT_USERNAME:
            return Response.json(
                {
                    "error": "invalid_grant",
                    "error_description": "user hasn't approved this consumer",
                },
                400,
            )
    else:
        return Response.json(
            {
                "error": "unsupported_grant_type",
                "error_description": "grant type not supported",
            },
            400,
        )
    token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
    with sandbox.lock:
        sandbox.tokens.add(token)
    base = sandbox.server.base_url
    return Response.json(
        {
            "access_token": token,
            "instance_url": base,
            "api_instance_url": base,
            "id": f"{base}/id/{ORG_ID}/{make_id('User', 1)}",
            "token_type": "Bearer",
            "issued_at": str(int(time.time() * 1000)),
            "scope": "api",
            "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
    )


def _form(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
