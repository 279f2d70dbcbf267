"""Salesforce's Metadata API (SOAP), what ``doctor --fix`` creates and grants fields with.

A module of its own because it is a second wire protocol next to ``client.py``'s REST one:
zeep, a WSDL and SOAP faults, used by one command only. It still touches the vendor SDK
(the WSDL simple-salesforce ships, and its session), so it is one of the ``client*``
modules the import-linter contract allows to.

It goes through zeep with that WSDL, not through ``sf.mdapi``: that helper builds its zeep
client on a default ``requests.Session`` (system CA, no timeout, none of our counting) and
raises a bare ``Exception`` for any failed component, where we need each component's
result. Here zeep gets a session made like the REST one, every call goes through the
client's one call path (``SalesforceClient.call``: guard, retries, one re-login on an
expired session), and results come back as dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import zeep
from simple_salesforce import Salesforce
from zeep.exceptions import Error as SoapError
from zeep.exceptions import Fault
from zeep.exceptions import TransportError as SoapTransportError
from zeep.helpers import serialize_object
from zeep.transports import Transport

from connectors.errors import ConfigError
from connectors.http import make_session
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import classify

METADATA_BATCH = 10  # components per create/upsert/read call (the Metadata API's limit)
_MD_BINDING = "{http://soap.sforce.com/2006/04/metadata}MetadataBinding"


class MetadataApi:
    """The Metadata API on ``client``'s org, session and call counter. Close it when done:
    it holds a session of its own (made on first use)."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._soap: zeep.Client | None = None

    def create(
        self, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``createMetadata``: one ``SaveResult`` per component (``fullName``, ``success``,
        ``errors``), in order; 10 components per call."""
        return self._save("createMetadata", type_name, components)

    def upsert(
        self, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """``upsertMetadata``: one ``UpsertResult`` per component (``created`` as well)."""
        return self._save("upsertMetadata", type_name, components)

    def read(self, type_name: str, full_names: Sequence[str]) -> list[dict[str, Any]]:
        """``readMetadata``: the components that exist, as dicts (missing names are absent)."""
        records: list[dict[str, Any]] = []
        for start in range(0, len(full_names), METADATA_BATCH):
            batch = list(full_names[start : start + METADATA_BATCH])
            result = self._call("readMetadata", type_name, batch) or []
            if isinstance(result, Mapping):  # zeep unwraps a ReadResult to its records
                result = result.get("records") or []
            records += [dict(r) for r in result if r and r.get("fullName")]
        return records

    def close(self) -> None:
        if self._soap is not None:
            self._soap.transport.session.close()

    def _save(
        self, operation: str, type_name: str, components: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        for start in range(0, len(components), METADATA_BATCH):
            batch = components[start : start + METADATA_BATCH]
            soap = self._soap_client()
            try:
                kind = soap.get_type(f"ns0:{type_name}")
                typed = [kind(**dict(c)) for c in batch]
            except (SoapError, TypeError) as exc:  # not a component the WSDL allows
                raise ConfigError(f"Metadata API {type_name}: {exc}") from exc
            results += self._call(operation, typed) or []
        return results

    def _soap_client(self) -> zeep.Client:
        """zeep on the bundled Metadata WSDL (read from disk, nothing fetched), posting
        through a session made like the client's: pinned CA, no proxies from the
        environment, every request counted as it is sent. zeep passes its own
        ``timeout`` to each post, so ours is given to it explicitly. A separate session,
        because zeep's transport sets its own User-Agent and a ``file://`` adapter on the
        session it is given."""
        if self._soap is None:
            policy = self.client.policy
            session = make_session(policy, self.client.settings.ca_bundle or None)
            session.on_send.append(self.client.count)
            timeout = (policy.connect_timeout, policy.read_timeout)
            wsdl = resources.files("simple_salesforce").joinpath("metadata.wsdl")
            self._soap = zeep.Client(
                str(wsdl),
                transport=Transport(session=session, operation_timeout=timeout),
                settings=zeep.Settings(strict=False, xsd_ignore_sequence_order=True),
            )
        return self._soap

    def _call(self, operation: str, *args: Any) -> Any:
        """One Metadata API call on the client's current session (its id goes in the SOAP
        ``SessionHeader``). SOAP faults are classified like the REST error with the same
        code."""

        def run(sf: Salesforce) -> Any:
            soap = self._soap_client()
            service = soap.create_service(_MD_BINDING, sf.metadata_url)
            header = soap.get_element("ns0:SessionHeader")(sessionId=sf.session_id)
            try:
                result = getattr(service, operation)(*args, _soapheaders=[header])
            except Fault as exc:
                raise _classify_fault(exc) from exc
            except SoapTransportError as exc:  # an HTTP error without a SOAP body
                raise classify(exc.status_code, None, "") from exc
            except SoapError as exc:  # refused before sending (zeep validates the request)
                raise ConfigError(f"Metadata API {operation}: {exc}") from exc
            return serialize_object(result, dict)

        return self.client.call("metadata", run)


#: SOAP fault codes → the HTTP status Salesforce's REST API answers the same code with, so
#: one table (``errors.py``) classifies both; any other fault is a request the org refused.
_FAULT_STATUS = {
    "INVALID_SESSION_ID": 401,
    "REQUEST_LIMIT_EXCEEDED": 403,
    "INSUFFICIENT_ACCESS": 403,
    "API_DISABLED_FOR_ORG": 403,
    "SERVER_UNAVAILABLE": 503,
    "UNKNOWN_EXCEPTION": 500,
}


def _classify_fault(fault: Fault) -> Exception:
    code = str(fault.code or "").rpartition(":")[2]
    message = str(fault.message or "").strip().removeprefix(f"{code}: ")
    error = classify(_FAULT_STATUS.get(code, 400), code, message)
    if isinstance(error, ConfigError):  # permanent: say what the org said (no record data)
        return ConfigError(f"Metadata API {code}: {message}")
    return error
