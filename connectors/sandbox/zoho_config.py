"""The ``crmtier.toml`` the Zoho sandbox writes for itself (``crmtier sandbox --crm zoho``,
the demo and the contract tests): its ``[crm]`` table with every secret as an ``env:``
reference, the shipped mapping, and the webhook channel it notifies.

Apart from ``zoho.py`` so that the sandbox keeps only its lifecycle, data and faults.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.sandbox.zoho_users import UNASSIGNED_OWNER

if TYPE_CHECKING:
    from connectors.sandbox.zoho import ZohoSandbox


def _crm_section(sandbox: ZohoSandbox, env_prefix: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``[crm]`` table for this sandbox (secrets as env refs) and the env values."""
    names = {
        "client_id": f"{env_prefix}_ZOHO_CLIENT_ID",
        "client_secret": f"{env_prefix}_ZOHO_CLIENT_SECRET",
        "refresh_token": f"{env_prefix}_ZOHO_REFRESH_TOKEN",
    }
    crm: dict[str, Any] = {
        "kind": "zoho",
        "base_url": sandbox.server.base_url,
        # the Accounts host, as docs/admin-setup.md has the admin write it
        "accounts_url": sandbox.server.base_url,
        "auth": "refresh_token",
        **{key: f"env:{env}" for key, env in names.items()},
        "ca_bundle": str(sandbox.ca_bundle),
        "api_share": 0.2,
        "daily_credits": sandbox.credits.limit,
        "unassigned_owner": UNASSIGNED_OWNER,
    }
    env = {names[key]: getattr(sandbox.app, key) for key in names}
    return crm, env


def crmtier_toml(sandbox: ZohoSandbox, env_prefix: str) -> tuple[str, dict[str, str]]:
    """The ``crmtier.toml`` text for this sandbox (the shipped mapping, secrets as env refs)
    and the environment values it refers to."""
    crm, env = _crm_section(sandbox, env_prefix)
    token_env = f"{env_prefix}_ZOHO_NOTIFY_TOKEN"
    env[token_env] = sandbox.notify_token
    lines = ["# crmtier.toml written by `crmtier sandbox --crm zoho`", "", "[crm]"]
    lines += [f"{key} = {_toml_value(value)}" for key, value in crm.items()]
    mapping_text = (
        Path(__file__).parent.parent.joinpath("zoho", "default_mapping.toml").read_text("utf-8")
    )
    body = mapping_text[mapping_text.index("[mapping]") :]
    lines += ["", body.rstrip(), "", "[policy]", 'file = ""', "", "[state]"]
    lines.append(f"url = {_toml_value('sqlite:///' + str(sandbox.data_dir / 'crmtier.db'))}")
    lines += ["", "[webhooks]", 'listen = "127.0.0.1:8080"']
    lines.append(f'zoho_token = "env:{token_env}"')
    lines.append(f'zoho_channel_id = "{sandbox.channel_id}"')
    return "\n".join(lines) + "\n", env


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
