"""The Salesforce sandbox's OAuth 2.0 token endpoint (``/services/oauth2/token``): the
client credentials flow and the JWT bearer flow, as a connected app answers them (OAuth
2.0 Client Credentials Flow and OAuth 2.0 JWT Bearer Flow, Salesforce Help). An issued
token joins the sandbox's session set, which every data route checks.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import jwt

from connectors.sandbox.salesforce_schema import ORG_ID, make_id
from connectors.sandbox.server import Request, Response

if TYPE_CHECKING:
    from connectors.sandbox.salesforce import SalesforceSandbox

JWT_USERNAME = "integration@crmtier.sandbox"


def token_endpoint(sandbox: SalesforceSandbox, request: Request) -> Response:
    form = {k: v[0] for k, v in _form(request).items()}
    grant = form.get("grant_type")
    if grant == "client_credentials":
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = request.header("Authorization", "") or ""
        if auth.startswith("Basic "):
            decoded = base64.b64decode(auth[6:]).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
        ok = hmac.compare_digest(client_id, sandbox.client_id) and hmac.compare_digest(
            client_secret, sandbox.client_secret
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
                sandbox.jwt_public_key(),
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
        if claims.get("iss") != sandbox.client_id or claims.get("sub") != JWT_USERNAME:
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
