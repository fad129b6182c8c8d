"""A gateway with tenancy over the simulators, and admin API calls for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from _gw_harness import Gateway, base_config

from turnout.sim.server import RunningSimulator

ADMIN_KEY = "admin-" + "q" * 40


@dataclass
class Admin:
    gw: Gateway

    async def call(self, method: str, path: str, body: Any = None,
                   key: str | None = ADMIN_KEY) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        headers["Content-Type"] = "application/json"
        data = orjson.dumps(body) if body is not None else None
        async with self.gw.http.request(method, f"{self.gw.url}/admin/v1{path}",
                                        data=data, headers=headers) as response:
            return response.status, orjson.loads(await response.read())

    async def tenant(self, tenant_id: str, policy: dict[str, Any] | None = None) -> None:
        status, body = await self.call("POST", "/tenants", {"id": tenant_id,
                                                            "name": tenant_id.title()})
        assert status == 201, body
        if policy is not None:
            status, body = await self.call("PUT", f"/tenants/{tenant_id}/policy", policy)
            assert status == 200, body

    async def key(self, tenant_id: str, policy: dict[str, Any] | None = None) -> str:
        fields: dict[str, Any] = {"name": "ci"}
        if policy is not None:
            fields["policy"] = policy
        status, body = await self.call("POST", f"/tenants/{tenant_id}/keys", fields)
        assert status == 201, body
        return str(body["key"])


def tenancy_data(sims: dict[str, RunningSimulator], db: Path, **tenancy: Any
                 ) -> dict[str, Any]:
    data = base_config(sims)
    data["tenancy"] = {"database": f"sqlite:///{db}", "admin_key": {"env": "ADMIN_KEY"},
                       **tenancy}
    return data
