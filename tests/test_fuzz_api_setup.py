"""What tests/test_fuzz_api.py promises about itself, pinned so that it cannot quietly weaken.

Every schemathesis check is on (`ignored_auth` and `use_after_free` among them), the seed and
the budget are fixed, and the document's links chain a create to its reveal and the reveal to
its acknowledgement, so the stateful run reaches the envelope with real ids and tokens. That the
two named checks fire at all was shown by planting the bugs they look for (a ticket view without
authentication: ST401 "API accepts requests without authentication"; a delete that leaves the
secret readable: ST301 "Deleted resource still available"), not kept here: it would mean
changing vault's code from a test.
"""

from __future__ import annotations

from typing import Any

import test_fuzz_api as fuzz
from schemathesis.config._checks import _BUILTIN_CHECK_CONFIGS

from vault.api.openapi import DOCUMENT


def test_every_check_is_on_with_a_fixed_seed_and_budget() -> None:
    project = fuzz.CONFIG.projects.default
    off = [name for name in _BUILTIN_CHECK_CONFIGS
           if not project.checks.get_by_name(name=name).enabled]
    assert not off, off
    assert project.checks.ignored_auth.enabled and project.checks.use_after_free.enabled
    assert project.seed == 20260515 and project.generation.deterministic
    assert project.generation.max_examples == fuzz.MAX_EXAMPLES
    assert fuzz.HYPOTHESIS.derandomize and fuzz.HYPOTHESIS.database is None


def _links(operation_id: str, status: str) -> dict[str, Any]:
    for item in DOCUMENT["paths"].values():
        for operation in item.values():
            if operation.get("operationId") == operation_id:
                links: dict[str, Any] = operation["responses"][status].get("links", {})
                return links
    raise AssertionError(f"no operation {operation_id}")


def test_links_chain_create_to_reveal_to_acknowledge() -> None:
    def targets(operation_id: str, status: str) -> set[str]:
        return {link["operationId"] for link in _links(operation_id, status).values()}

    assert {"revealSecret", "getSecret", "deleteSecret"} <= targets("createSecret", "201")
    assert {"fillRequest", "getRequest"} <= targets("createRequest", "201")
    assert {"revealSecret", "getSecret", "deleteSecret"} <= targets("fillRequest", "201")
    assert "ackSecret" in targets("revealSecret", "200")
    # The delete link carries the manage token, or every linked delete would be a 403.
    delete = _links("createSecret", "201")["DeleteSecret"]["parameters"]
    assert delete["header.X-Manage-Token"] == "$response.body#/manage_token"
