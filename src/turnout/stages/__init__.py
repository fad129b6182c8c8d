"""Pipeline stages, and the list a configuration asks for.

Each stage lives in a module of its own; `config_stages` is the one place that decides,
from the compiled config, which stages run and in what order (the order of
`shared/DESIGN.md`: authenticate, admit, reserve, cache, redact, route, execute, govern,
settle, emit). A stage the config does not use is not in the list at all.
"""

from __future__ import annotations

from turnout.config.runtime import RuntimeConfig
from turnout.engine.pipeline import Stage
from turnout.stages.authenticate import Authenticate, CredentialCheck, StaticKeys
from turnout.stages.metering import Meter
from turnout.stages.quota import Quota
from turnout.stages.resources import StageResources
from turnout.stages.virtual_keys import AliasScope, VirtualKeys


def config_stages(runtime: RuntimeConfig, resources: StageResources) -> list[Stage]:
    """The stages `runtime` needs, in pipeline order."""
    stages: list[Stage] = []
    checks: list[CredentialCheck] = []
    if runtime.server.gateway_keys:
        checks.append(StaticKeys(runtime.server.gateway_keys))
    if runtime.tenancy is not None:
        checks.append(VirtualKeys(runtime.tenancy, resources))
    if checks:
        stages.append(Authenticate(checks))
    if runtime.tenancy is not None:
        stages.append(AliasScope())
        stages.append(Quota(runtime.tenancy, resources.shared_stores(runtime.state)))
        stages.append(Meter())
    if runtime.tenancy is not None and runtime.tenancy.master_keys:
        from turnout.stages.byok import BringYourOwnKey  # cryptography only when used

        stages.append(BringYourOwnKey(runtime.tenancy, resources))
    if runtime.tenancy is not None:
        # After BYOK: an attempt is journaled with the deployment it is really sent to.
        from turnout.stages.ledger import Ledger

        stages.append(Ledger(resources.spend_ledger(runtime.tenancy)))
    return stages
