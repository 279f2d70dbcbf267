"""The sandbox org's Metadata API: the SOAP endpoint ``/services/Soap/m/{version}`` that
``crmtier doctor --fix`` calls to create custom fields and grant them to the integration
user, so a fix really changes what the next ``describe`` (and ``doctor``) sees.

Served: ``createMetadata`` and ``upsertMetadata`` of ``CustomField`` and ``PermissionSet``,
``readMetadata`` of ``PermissionSet``, each answering per component (``SaveResult`` /
``UpsertResult`` with ``fullName``, ``success``, ``errors[statusCode, message]``) as the
Metadata WSDL bundled with simple-salesforce describes. Whole-call failures are SOAP faults
(HTTP 500, ``faultcode`` ``sf:<CODE>``): a missing or stale ``SessionHeader`` is
``sf:INVALID_SESSION_ID``, a metadata type the sandbox does not model is ``sf:INVALID_TYPE``,
more than 10 components is ``sf:LIMIT_EXCEEDED``.

Field-level security is modelled the way it bites an installer: a field created through the
Metadata API is granted to no one, so it stays out of the integration user's ``describe``
until a permission set assigned to that user (``INTEGRATION_PERMISSION_SET``) grants Read
(Edit makes it ``updateable``). A permission-set upsert replaces the set's
``fieldPermissions`` with the ones sent: the cautious reading (an update supplies the whole
component; whether Salesforce merges instead is not verified against a live org), so a
client that sent only its own grants would be seen to revoke the rest. The per-field
validation (required ``length``, ``precision``, ``visibleLines``, picklist values, External
ID only on Text/Number/Email) follows the ``CustomField`` reference; the error messages are
the sandbox's own wording.
"""

from __future__ import annotations

import hmac
import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any
from xml.etree import ElementTree as ET  # builds responses only; requests go through defusedxml

from defusedxml import ElementTree as SafeET

from connectors.sandbox.salesforce_org import SalesforceOrg
from connectors.sandbox.salesforce_specs import FieldSpec
from connectors.sandbox.server import Request, Response

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
MD_NS = "http://soap.sforce.com/2006/04/metadata"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
#: the permission set assigned to the sandbox's integration user
INTEGRATION_PERMISSION_SET = "Crmtier_Integration"
MAX_COMPONENTS = 10  # per create/upsert/read call, as in Salesforce

_NAME = re.compile(r"(?P<obj>[A-Za-z]\w*)\.(?P<field>[A-Za-z][A-Za-z0-9_]*__c)")
#: Metadata ``FieldType`` → the type ``describe`` reports
_DESCRIBE_TYPES = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Number": "double",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Email": "email",
    "Phone": "phone",
    "Url": "url",
    "Currency": "currency",
    "Percent": "percent",
}
#: The field types whose component declares a ``length`` (``_field_problem`` checks it).
_TEXT_KINDS = ("Text", "LongTextArea")
_KEYABLE = ("Text", "Number", "Email")  # types that may be External ID / unique
#: Task (and Event) custom fields are defined on Activity in the Metadata API
_DEFINED_ON = {"Activity": "Task"}
for _prefix, _uri in (("soapenv", SOAP_NS), ("md", MD_NS), ("xsi", XSI_NS)):
    ET.register_namespace(_prefix, _uri)  # readable prefixes in the answers


class SoapFault(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def soap_fault(code: str, message: str) -> Response:
    """A Metadata API SOAP fault (HTTP 500), e.g. for a test to inject on kind ``metadata``."""
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    fault = ET.SubElement(ET.SubElement(envelope, f"{{{SOAP_NS}}}Body"), f"{{{SOAP_NS}}}Fault")
    ET.SubElement(fault, "faultcode").text = f"sf:{code}"
    ET.SubElement(fault, "faultstring").text = f"{code}: {message}"
    return _xml(envelope, 500)


@dataclass
class PermissionSet:
    label: str
    fields: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # field: (read, edit)


class MetadataApi:
    """The SOAP handler. It shares the REST side's issued tokens (and their lock), so an
    expired session fails here too, and adds fields to ``org.schema`` at call time."""

    def __init__(self, org: SalesforceOrg, tokens: set[str], lock: threading.Lock) -> None:
        self.org = org
        self._tokens = tokens
        self._tokens_lock = lock
        self._lock = threading.Lock()
        #: created but granted to no permission set of the integration user yet
        self.hidden: dict[str, FieldSpec] = {}
        self.permission_sets = {
            INTEGRATION_PERMISSION_SET: PermissionSet("crmtier integration"),
        }

    def handle(self, request: Request) -> Response:
        try:
            envelope = SafeET.fromstring(request.body)
            self._authenticate(envelope)
            body = envelope.find(f"{{{SOAP_NS}}}Body")
            call = body[0] if body is not None and len(body) else None
            if call is None or not call.tag.startswith(f"{{{MD_NS}}}"):
                raise SoapFault("INVALID_OPERATION", "no Metadata API operation in the body")
            operation = call.tag.removeprefix(f"{{{MD_NS}}}")
            with self._lock:
                if operation == "readMetadata":
                    return self._read(call)
                if operation in ("createMetadata", "upsertMetadata"):
                    return self._save(call, upsert=operation == "upsertMetadata")
            raise SoapFault("INVALID_OPERATION", f"{operation} is not served by the sandbox")
        except SafeET.ParseError as exc:
            return soap_fault("INVALID_XML", f"malformed request: {exc}")
        except SoapFault as fault:
            return soap_fault(fault.code, fault.message)

    def _authenticate(self, envelope: Any) -> None:
        token = envelope.findtext(
            f"{{{SOAP_NS}}}Header/{{{MD_NS}}}SessionHeader/{{{MD_NS}}}sessionId"
        )
        with self._tokens_lock:
            valid = bool(token) and any(hmac.compare_digest(token, t) for t in self._tokens)
        if not valid:
            raise SoapFault(
                "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
            )

    # --- calls -----------------------------------------------------------------------------

    def _save(self, call: Any, *, upsert: bool) -> Response:
        components = call.findall(f"{{{MD_NS}}}metadata")
        if len(components) > MAX_COMPONENTS:
            raise SoapFault("LIMIT_EXCEEDED", f"Exceeded max size limit of {MAX_COMPONENTS}")
        results = []
        for component in components:
            kind = (component.get(f"{{{XSI_NS}}}type") or "").rpartition(":")[2]
            if kind == "CustomField":
                results.append(self._save_field(component, upsert))
            elif kind == "PermissionSet":
                results.append(self._save_permission_set(component, upsert))
            else:
                raise SoapFault("INVALID_TYPE", f"This type of metadata is not available: {kind}")
        operation = "upsertMetadataResponse" if upsert else "createMetadataResponse"
        return _response(operation, results)

    def _read(self, call: Any) -> Response:
        kind = call.findtext(f"{{{MD_NS}}}type")
        if kind != "PermissionSet":
            raise SoapFault("INVALID_TYPE", f"This type of metadata is not available: {kind}")
        names = [n.text or "" for n in call.findall(f"{{{MD_NS}}}fullNames")]
        if len(names) > MAX_COMPONENTS:
            raise SoapFault("LIMIT_EXCEEDED", f"Exceeded max size limit of {MAX_COMPONENTS}")
        envelope, response = _envelope("readMetadataResponse")
        result = ET.SubElement(response, f"{{{MD_NS}}}result")
        for name in names:
            pset = self.permission_sets.get(name)
            if pset is None:
                continue
            records = ET.SubElement(result, f"{{{MD_NS}}}records")
            records.set(f"{{{XSI_NS}}}type", "md:PermissionSet")
            _text(records, "fullName", name)
            for field_name, (read, edit) in sorted(pset.fields.items()):
                grant = ET.SubElement(records, f"{{{MD_NS}}}fieldPermissions")
                _text(grant, "editable", _bool(edit))
                _text(grant, "field", field_name)
                _text(grant, "readable", _bool(read))
            _text(records, "label", pset.label)
        return _xml(envelope)

    # --- CustomField -------------------------------------------------------------------------

    def _save_field(self, component: Any, upsert: bool) -> SaveOutcome:
        full_name = _child(component, "fullName")
        match = _NAME.fullmatch(full_name)
        if match is None:
            return SaveOutcome.failed(
                full_name,
                "FIELD_INTEGRITY_EXCEPTION",
                "fullName must be Object.Field__c (a custom field's API name ends in __c)",
            )
        obj, name = _DEFINED_ON.get(match["obj"], match["obj"]), match["field"]
        spec = self.org.schema.get(obj)
        if spec is None:
            return SaveOutcome.failed(
                full_name,
                "INVALID_CROSS_REFERENCE_KEY",
                f"In field: fullName - no CustomObject named {obj} found",
            )
        exists = name in spec.fields or full_name in self.hidden
        if exists and not upsert:
            return SaveOutcome.failed(
                full_name,
                "DUPLICATE_DEVELOPER_NAME",
                f"There is already a field named {name} on {obj}.",
            )
        problem = _field_problem(component)
        if problem is not None:
            return SaveOutcome.failed(full_name, "FIELD_INTEGRITY_EXCEPTION", problem)
        kind = _child(component, "type")
        values = tuple(
            v.findtext(f"{{{MD_NS}}}fullName") or ""
            for v in component.iterfind(
                f"{{{MD_NS}}}valueSet/{{{MD_NS}}}valueSetDefinition/{{{MD_NS}}}value"
            )
        )
        created = FieldSpec(
            name,
            _DESCRIBE_TYPES[kind],
            picklist=values,
            restricted=_child(component, "valueSet/restricted") == "true",
            external_id=_child(component, "externalId") == "true",
            unique=_child(component, "unique") == "true",
            # a text field holds what its component declares, as the org's does
            length=_int(_child(component, "length")) if kind in _TEXT_KINDS else None,
        )
        if name in spec.fields:  # an update keeps the field's current access
            spec.add(replace(created, updateable=spec.fields[name].updateable))
        else:
            self.hidden[full_name] = created
            self._grant_pending()
        return SaveOutcome(full_name, created=not exists)

    # --- PermissionSet -----------------------------------------------------------------------

    def _save_permission_set(self, component: Any, upsert: bool) -> SaveOutcome:
        name = _child(component, "fullName")
        pset = self.permission_sets.get(name)
        if pset is not None and not upsert:
            return SaveOutcome.failed(
                name, "DUPLICATE_DEVELOPER_NAME", f"There is already a permission set {name}."
            )
        label = _child(component, "label")
        if pset is None and not label:
            return SaveOutcome.failed(
                name, "REQUIRED_FIELD_MISSING", "Label: You must enter a value"
            )
        grants: dict[str, tuple[bool, bool]] = {}
        for grant in component.iterfind(f"{{{MD_NS}}}fieldPermissions"):
            target = grant.findtext(f"{{{MD_NS}}}field") or ""
            read = grant.findtext(f"{{{MD_NS}}}readable") == "true"
            edit = grant.findtext(f"{{{MD_NS}}}editable") == "true"
            if not self._field_exists(target):
                return SaveOutcome.failed(
                    name,
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"In field: field - no CustomField named {target} found",
                )
            if edit and not read:
                return SaveOutcome.failed(
                    name,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"Permission Edit on {target} depends on permission(s): Read",
                )
            grants[target] = (read, edit)
        created = pset is None
        if pset is None:
            pset = self.permission_sets[name] = PermissionSet(label)
        elif label:
            pset.label = label
        pset.fields = grants
        if name == INTEGRATION_PERMISSION_SET:
            self._apply_grants(grants)
        return SaveOutcome(name, created=created)

    def _field_exists(self, full_name: str) -> bool:
        obj, _, name = full_name.partition(".")
        spec = self.org.schema.get(_DEFINED_ON.get(obj, obj))
        return full_name in self.hidden or (spec is not None and name in spec.fields)

    def _apply_grants(self, grants: dict[str, tuple[bool, bool]]) -> None:
        """The integration user's ``describe`` follows its permission set: Read shows a
        created field, Edit makes a field ``updateable``."""
        for full_name, (read, edit) in grants.items():
            obj, _, name = full_name.partition(".")
            spec = self.org.schema[_DEFINED_ON.get(obj, obj)]
            hidden = self.hidden.pop(full_name, None) if read else None
            current = hidden or spec.fields.get(name)
            if current is not None and read:
                spec.add(replace(current, updateable=edit, createable=edit))

    def _grant_pending(self) -> None:
        """A field the integration permission set already names (granted before it was
        created, as a deploy of both at once does) is visible as soon as it exists."""
        granted = self.permission_sets[INTEGRATION_PERMISSION_SET].fields
        self._apply_grants({n: granted[n] for n in list(self.hidden) if n in granted})


@dataclass(frozen=True)
class SaveOutcome:
    full_name: str
    created: bool = True
    success: bool = True
    errors: tuple[tuple[str, str], ...] = ()  # (statusCode, message)

    @classmethod
    def failed(cls, full_name: str, code: str, message: str) -> SaveOutcome:
        return cls(full_name, created=False, success=False, errors=((code, message),))


def _field_problem(component: Any) -> str | None:
    """Why Salesforce would refuse this ``CustomField``, or None."""
    kind = _child(component, "type")
    if kind not in _DESCRIBE_TYPES:
        return f"type: {kind or '(none)'} is not a field type the sandbox can create"
    if not _child(component, "label"):
        return "Label: You must enter a value"
    length = _int(_child(component, "length"))
    if kind == "Text" and not 1 <= length <= 255:
        return "Length: a Text field's length must be 1 to 255"
    if kind == "LongTextArea":
        if not 256 <= length <= 131072:
            return "Length: a Long Text Area's length must be 256 to 131,072"
        if _int(_child(component, "visibleLines")) < 2:
            return "Visible Lines: a Long Text Area needs at least 2"
    if kind in ("Number", "Currency", "Percent"):
        precision, scale = _int(_child(component, "precision")), _int(_child(component, "scale"))
        if not 1 <= precision <= 18 or not 0 <= scale <= precision:
            return "Length and Decimal Places: precision 1 to 18, scale 0 to precision"
    if kind == "Checkbox" and _child(component, "defaultValue") not in ("true", "false"):
        return "Default Value: a Checkbox needs true or false"
    if kind in ("Picklist", "MultiselectPicklist") and not component.findall(
        f"{{{MD_NS}}}valueSet/{{{MD_NS}}}valueSetDefinition/{{{MD_NS}}}value"
    ):
        return "Values: a picklist needs at least one value"
    keyed = _child(component, "externalId") == "true" or _child(component, "unique") == "true"
    if keyed and kind not in _KEYABLE:
        return f"External ID and Unique are only for {', '.join(_KEYABLE)} fields"
    return None


# --- XML ---------------------------------------------------------------------------------


def _child(element: Any, path: str) -> str:
    tagged = "/".join(f"{{{MD_NS}}}{part}" for part in path.split("/"))
    return (element.findtext(tagged) or "").strip()


def _int(text: str) -> int:
    return int(text) if text.isdigit() else -1


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{MD_NS}}}{tag}").text = text


def _envelope(operation: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(f"{{{SOAP_NS}}}Envelope")
    body = ET.SubElement(envelope, f"{{{SOAP_NS}}}Body")
    return envelope, ET.SubElement(body, f"{{{MD_NS}}}{operation}")


def _response(operation: str, results: list[SaveOutcome]) -> Response:
    envelope, response = _envelope(operation)
    for outcome in results:
        result = ET.SubElement(response, f"{{{MD_NS}}}result")
        if operation == "upsertMetadataResponse":
            _text(result, "created", _bool(outcome.created))
        for code, message in outcome.errors:
            error = ET.SubElement(result, f"{{{MD_NS}}}errors")
            _text(error, "message", message)
            _text(error, "statusCode", code)
        _text(result, "fullName", outcome.full_name)
        _text(result, "success", _bool(outcome.success))
    return _xml(envelope)


def _xml(envelope: ET.Element, status: int = 200) -> Response:
    body = ET.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return Response(status, body, {"Content-Type": "text/xml; charset=utf-8"})
