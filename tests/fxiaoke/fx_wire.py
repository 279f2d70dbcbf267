"""A bare FXiaoke client for tests of the sandbox's wire format: plain requests, no
connector."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from connectors.sandbox.fxiaoke import FxiaokeSandbox


class Wire:
    """A bare FXiaoke client: POST + JSON, a fresh thirdTraceId, optional bearer auth."""

    def __init__(self, sandbox: FxiaokeSandbox) -> None:
        self.sandbox = sandbox
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.verify = sandbox.info().ca_bundle
        self.token: str | None = None

    def post(
        self,
        path: str,
        body: Any,
        *,
        trace: bool = True,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        params = {"thirdTraceId": str(uuid.uuid4())} if trace else {}
        response = self.session.post(
            self.sandbox.server.base_url + path,
            json=body,
            params=params,
            headers=headers or {},
            timeout=10,
        )
        assert response.status_code == 200  # FXiaoke answers 200 to everything
        answer: dict[str, Any] = response.json()
        return answer

    def app(self, **extra: Any) -> dict[str, Any]:
        sb = self.sandbox
        return {
            "appId": sb.app_id,
            "appSecret": sb.app_secret,
            "permanentCode": sb.permanent_code,
            **extra,
        }

    def login(self) -> dict[str, str]:
        answer = self.post("/oauth2.0/token", self.app(grantType="app_secret"))
        assert answer["errorCode"] == 0
        return {
            "authorization": f"Bearer {answer['accessToken']}",
            "x-fs-ea": answer["ea"],
            "x-fs-userid": "1000",
        }

    def query(self, headers: dict[str, str], **info: Any) -> dict[str, Any]:
        data = {"dataObjectApiName": "AccountObj", "search_query_info": {"limit": 10, **info}}
        return self.post("/cgi/crm/v2/data/query", {"data": data}, headers=headers)
