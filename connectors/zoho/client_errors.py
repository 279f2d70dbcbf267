"""zcrmsdk's ``SDKException`` as a ``connectors.errors`` class.

zcrmsdk wraps everything that goes wrong under it in one exception type: Zoho's refusals
(a code and a message, classified by ``errors.py``'s tables), but also our own errors
raised from inside an SDK call (the credit budget, a token endpoint that is not one) and
``requests`` transport failures. Unwrapping it needs the SDK's exception class, so it lives
in a ``client*`` module (the only ones the import-linter contract lets import zcrmsdk),
apart from the tables, which know no SDK.
"""

from __future__ import annotations

import requests
from zcrmsdk.src.com.zoho.crm.api.exception import SDKException

from connectors.errors import ConfigError, ConnectorError, TransientError
from connectors.zoho.errors import API_EXCEPTION, classify_api_exception, classify_sdk


def translate(exc: SDKException, accounts_url: str) -> ConnectorError:
    """An SDKException as a connector error; our own errors raised under the SDK and
    transport failures are recovered from its cause chain. ``accounts_url`` names the
    token endpoint in Accounts' refusals."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectorError):
            return cause
        if isinstance(cause, requests.RequestException):
            return _transport_error(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__
    details = exc.details if isinstance(exc.details, dict) else {}
    if exc.code == API_EXCEPTION:
        return classify_api_exception(details.get("code"))
    error = classify_sdk(exc.code, exc.error_message if exc.code else None, accounts_url)
    field_name = details.get("field")
    if field_name:
        return type(error)(f"{error} (field {field_name})")
    return error


def _transport_error(exc: requests.RequestException) -> ConnectorError:
    """A failed HTTP exchange: TLS trust is configuration, the rest may pass."""
    if isinstance(exc, requests.exceptions.SSLError):
        return ConfigError(
            "TLS verification of Zoho failed: check crm.ca_bundle (the environment's "
            "REQUESTS_CA_BUNDLE is deliberately not used)"
        )
    return TransientError(f"Zoho unreachable: {type(exc).__name__}")
