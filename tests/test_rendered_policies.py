"""Every IAM policy document the program renders passes parliament (AWS's policy linter).

Identity policies (role policies, inline and managed) and resource policies (bucket and
repository policies) are audited; trust policies are not (parliament audits permissions, and a
trust policy has a Principal instead of a Resource). Findings are zero or waived here with the
reason next to the waiver.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator

import pytest

from mlplatform.guardrails import POLICY_PROPS
from mlplatform.program import ProgramRun
from tests.conftest import build

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # parliament imports the deprecated pkg_resources
    from parliament import analyze_policy_string

RESOURCE_POLICY_TYPES = {
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
}
DOCUMENT_PROPS = {**POLICY_PROPS, **RESOURCE_POLICY_TYPES}


def rendered_policies(run: ProgramRun) -> Iterator[tuple[str, str]]:
    for r in run.resources:
        if r.type in DOCUMENT_PROPS and isinstance(r.inputs.get(DOCUMENT_PROPS[r.type]), str):
            yield f"{r.type} {r.name}", r.inputs[DOCUMENT_PROPS[r.type]]
        if r.type == "aws:iam/role:Role":
            for inline in r.inputs.get("inlinePolicies") or []:
                yield f"{r.name} inline {inline.get('name')}", inline["policy"]


def parliament_findings(document: str) -> list[tuple[str, object]]:
    return [(f.issue, f.detail) for f in analyze_policy_string(document).findings]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_policy_of_the_real_stacks_is_parliament_clean(
    stack: str, request: pytest.FixtureRequest
) -> None:
    run: ProgramRun = request.getfixturevalue(stack)
    policies = dict(rendered_policies(run))
    kinds = {name.split(" ")[0] for name in policies}
    assert {"aws:iam/rolePolicy:RolePolicy", "aws:s3/bucketPolicy:BucketPolicy"} <= kinds
    for name, document in policies.items():
        json.loads(document)  # rendered, not an unresolved Output
        assert parliament_findings(document) == [], name


def test_optional_policies_are_parliament_clean_too() -> None:
    """Per-user prefixes and git secrets add statements the stack files may not enable."""
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:repo-AbCdEf"
    run = build(
        {
            "mlplatform:perUserS3Prefixes": True,
            "mlplatform:notebooks": [
                {
                    "name": "a",
                    "owner": "o",
                    "gitRepository": {"url": "https://x/y.git", "secretArn": secret},
                }
            ],
        }
    )
    policies = dict(rendered_policies(run))
    assert len(policies) == 4  # shared role, per-user role, two bucket policies
    for name, document in policies.items():
        assert parliament_findings(document) == [], name


def test_parliament_does_flag_a_bad_policy() -> None:
    """The audit above can fail: a made-up action and a resource-less statement are findings."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObjectz", "Resource": "*"}],
    }
    assert parliament_findings(json.dumps(bad))
