"""ArcRunners, runner images and rendered manifests: under mocks, and the hooks run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml

from mlplatform.components.arc_runners import (
    DEFAULT_RUNNER_CLASSES,
    HOOK_SCRIPTS,
    OFFICIAL_RUNNER_IMAGE,
    RUNNER_VERSION,
    ArcRunners,
    ArcRunnersArgs,
    GitHubAuth,
    RunnerClass,
    runner_pod_spec,
)
from mlplatform.components.helm import CHARTS
from mlplatform.components.images import CACHE_TAG, content_digest, source_tag
from mlplatform.components.schema import ArgsError
from mlplatform.components.training_manifests import check_job_structure, pod_templates
from mlplatform.config import ConfigError, parse_stack_config
from mlplatform.manifests import kubernetes_version, render, write
from mlplatform.mocks import unwrap_secret
from mlplatform.plan import plan_document
from mlplatform.program import ProgramRun, run_program
from tests.conftest import MINIMAL, ROOT, build

RELEASE = "kubernetes:helm.sh/v3:Release"
P = "mlplatform-test"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----\n"
)
EKS = {
    "systemNodeGroup": {"instanceType": "m6i.large", "minSize": 2, "maxSize": 3},
    "gpuNodeGroups": [
        {"name": "gpu", "instanceTypes": ["g5.xlarge"], "maxSize": 2},
        {"name": "big", "instanceTypes": ["g5.12xlarge"], "maxSize": 1},
    ],
}
ARC: dict[str, Any] = {
    "githubConfigUrl": "https://github.com/example-org",
    "githubAppId": 42,
    "githubAppInstallationId": 4242,
    "runnerClasses": [
        {"name": "cpu", "minRunners": 1, "maxRunners": 3},
        {"name": "gpu", "gpu": True},
        {"name": "gpu-x4", "gpu": True, "nodeGroup": "big", "gpus": 4},
    ],
}
CONFIG = {
    "mlplatform:eks": EKS,
    "mlplatform:arc": ARC,
    "mlplatform:githubAppPrivateKey": PRIVATE_KEY,
}


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return build(CONFIG)


def release(run: ProgramRun, name: str) -> dict[str, Any]:
    return run.named(f"{P}-arc-{name}", RELEASE).inputs


def pod_spec(run: ProgramRun, runner: str) -> dict[str, Any]:
    return release(run, runner)["values"]["template"]["spec"]


# --- controller and scale sets ----------------------------------------------------------------


def test_controller_and_scale_sets_use_the_same_pinned_oci_charts(run: ProgramRun) -> None:
    controller = release(run, "controller")
    assert controller["chart"] == CHARTS["gha-runner-scale-set-controller"].chart
    assert controller["chart"].startswith("oci://ghcr.io/actions/")
    assert controller["namespace"] == "arc-systems"
    for runner in ("cpu", "gpu", "gpu-x4"):
        scale_set = release(run, runner)
        assert scale_set["chart"] == CHARTS["gha-runner-scale-set"].chart
        assert scale_set["version"] == controller["version"]  # ARC requires matching versions
        assert scale_set["namespace"] == "arc-runners"


def test_controller_values_are_layered_and_watch_only_the_runner_namespace(
    staging: ProgramRun,
) -> None:
    values = staging.named("mlplatform-staging-arc-controller", RELEASE).inputs["values"]
    assert values["flags"] == {
        "logLevel": "debug",  # values-staging.yaml over values.yaml's info
        "logFormat": "json",
        "runnerMaxConcurrentReconciles": 2,
        "watchSingleNamespace": "arc-runners",  # computed
    }
    assert values["serviceAccount"] == {"create": True, "name": "arc-controller"}
    assert values["nodeSelector"] == {"mlplatform.io/node-group": "system"}
    assert values["replicaCount"] == 1


def test_production_controller_runs_two_replicas(production: ProgramRun) -> None:
    values = production.named("mlplatform-production-arc-controller", RELEASE).inputs["values"]
    assert values["replicaCount"] == 2
    assert values["flags"]["logLevel"] == "info"


def test_one_scale_set_per_runner_class_registered_with_the_app_secret(run: ProgramRun) -> None:
    scale_sets = {
        r.inputs["values"]["runnerScaleSetName"]: r.inputs["values"]
        for r in run.of_type(RELEASE)
        if r.inputs["chart"] == CHARTS["gha-runner-scale-set"].chart
    }
    assert set(scale_sets) == {"cpu", "gpu", "gpu-x4"}
    for values in scale_sets.values():
        assert values["githubConfigUrl"] == "https://github.com/example-org"
        assert values["githubConfigSecret"] == "github-config"
        assert values["runnerGroup"] == "default"
        assert values["controllerServiceAccount"] == {
            "namespace": "arc-systems",
            "name": "arc-controller",
        }
        assert "containerMode" not in values  # no dind sidecar: it has no NVIDIA runtime
    assert (scale_sets["cpu"]["minRunners"], scale_sets["cpu"]["maxRunners"]) == (1, 3)


def test_staging_runners_scale_to_zero(staging: ProgramRun) -> None:
    scale_sets = [
        r.inputs["values"]
        for r in staging.of_type(RELEASE)
        if r.inputs["chart"] == CHARTS["gha-runner-scale-set"].chart
    ]
    assert {v["runnerScaleSetName"] for v in scale_sets} == {"cpu", "gpu"}
    assert all(v["minRunners"] == 0 for v in scale_sets)


def test_gpu_runners_target_their_group_tolerate_the_taint_and_get_gpus(run: ProgramRun) -> None:
    spec = pod_spec(run, "gpu")
    assert spec["nodeSelector"] == {"mlplatform.io/node-group": "gpu"}
    assert spec["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    (runner,) = spec["containers"]  # the runner only: no dind sidecar
    assert runner["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"name": "EXPECTED_GPUS", "value": "1"} in runner["env"]
    big = pod_spec(run, "gpu-x4")
    assert big["nodeSelector"] == {"mlplatform.io/node-group": "big"}
    assert big["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_cpu_runners_stay_on_the_system_group_without_gpus(run: ProgramRun) -> None:
    spec = pod_spec(run, "cpu")
    assert spec["nodeSelector"] == {"mlplatform.io/node-group": "system"}
    assert "tolerations" not in spec
    (runner,) = spec["containers"]
    assert "nvidia.com/gpu" not in runner["resources"]["limits"]
    assert not any(e["name"] == "EXPECTED_GPUS" for e in runner["env"])


def test_runner_pods_are_unprivileged_and_merge_the_shared_values(run: ProgramRun) -> None:
    spec = pod_spec(run, "gpu")
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == {
        "fsGroup": 1001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec["terminationGracePeriodSeconds"] == 120  # helm/arc-runners/values.yaml
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["runAsNonRoot"] is True


def test_job_hooks_are_mounted_from_the_config_map_and_wired_by_env(run: ProgramRun) -> None:
    spec = pod_spec(run, "cpu")
    (runner,) = spec["containers"]
    env = {e["name"]: e["value"] for e in runner["env"]}
    assert env["ACTIONS_RUNNER_HOOK_JOB_STARTED"] == "/opt/mlplatform/hooks/job-started.sh"
    assert env["ACTIONS_RUNNER_HOOK_JOB_COMPLETED"] == "/opt/mlplatform/hooks/job-completed.sh"
    assert {"name": "hooks", "mountPath": "/opt/mlplatform/hooks", "readOnly": True} in runner[
        "volumeMounts"
    ]
    hooks = {"name": "hooks", "configMap": {"name": "runner-hooks", "defaultMode": 0o555}}
    assert hooks in spec["volumes"]
    config_map = run.named(f"{P}-arc-runner-hooks", "kubernetes:core/v1:ConfigMap").inputs
    assert config_map["metadata"] == {"name": "runner-hooks", "namespace": "arc-runners"}
    scripts = ROOT / "components" / "scripts"
    assert config_map["data"] == {
        key: (scripts / file).read_text() for key, file in HOOK_SCRIPTS.items()
    }


def test_namespaces_enforce_baseline_pod_security(run: ProgramRun) -> None:
    namespaces = {
        r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"]
        for r in run.of_type("kubernetes:core/v1:Namespace")
    }
    assert set(namespaces) == {"arc-systems", "arc-runners"}
    for labels in namespaces.values():
        assert labels["pod-security.kubernetes.io/enforce"] == "baseline"
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"


def test_runner_pods_accept_no_ingress(run: ProgramRun) -> None:
    policy = run.named(
        f"{P}-arc-runners-deny-ingress", "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    )
    assert policy.inputs["metadata"] == {"name": "deny-ingress", "namespace": "arc-runners"}
    assert policy.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    vpc_cni = run.named(f"{P}-vpc-cni", "aws:eks/addon:Addon")
    assert json.loads(vpc_cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_runner_pods_carry_their_scanner_waivers_with_reasons(run: ProgramRun) -> None:
    annotations = release(run, "gpu")["values"]["template"]["metadata"]["annotations"]
    waived = dict(a.split("=", 1) for a in annotations.values())
    assert set(waived) == {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_11", "CKV_K8S_22", "CKV_K8S_40"}
    assert all(len(reason) > 20 for reason in waived.values())


def test_everything_installs_through_the_clusters_provider(run: ProgramRun) -> None:
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    reference = f"{provider.urn}::{provider.id}"
    (component,) = run.of_type("mlplatform:index:ArcRunners")
    children = [r for r in run.resources if r.parent == component.urn]
    # namespaces, secret, config map, network policy, controller, scale sets
    assert len(children) == 2 + 3 + 1 + 3
    assert all(r.provider == reference for r in children)


# --- secrets -----------------------------------------------------------------------------------


def test_app_credentials_become_a_kubernetes_secret(run: ProgramRun) -> None:
    secret = run.named(f"{P}-arc-github-config", "kubernetes:core/v1:Secret")
    assert secret.inputs["metadata"] == {"name": "github-config", "namespace": "arc-runners"}
    assert unwrap_secret(secret.inputs["stringData"]) == {
        "github_app_id": "42",
        "github_app_installation_id": "4242",
        "github_app_private_key": PRIVATE_KEY,
    }


def test_private_key_never_appears_in_plain_inputs_or_outputs(run: ProgramRun) -> None:
    document = json.dumps(plan_document(run))
    assert "BEGIN RSA PRIVATE KEY" not in document
    assert "MIIEowIBAAKCAQEAtest" not in document
    secret = next(r for r in plan_document(run)["resources"] if r["type"].endswith(":Secret"))
    assert secret["inputs"]["stringData"] == "[secret]"
    # nor in any Helm values: the scale sets only name the Secret
    for r in run.of_type(RELEASE):
        assert "PRIVATE KEY" not in json.dumps(r.inputs["values"])


def test_token_auth_is_the_fallback() -> None:
    run = build(
        {
            "mlplatform:eks": EKS,
            "mlplatform:arc": {
                "githubConfigUrl": "https://github.com/example-org/repo",
                "auth": "token",
                "runnerClasses": [{"name": "cpu"}],
            },
            "mlplatform:githubToken": "ghp_exampletoken",
        }
    )
    secret = run.named(f"{P}-arc-github-config", "kubernetes:core/v1:Secret")
    assert unwrap_secret(secret.inputs["stringData"]) == {"github_token": "ghp_exampletoken"}
    assert "ghp_exampletoken" not in json.dumps(plan_document(run))


# --- destroy ordering ---------------------------------------------------------------------------


def test_scale_sets_depend_on_controller_and_secret_so_destroy_removes_them_first(
    run: ProgramRun,
) -> None:
    controller = run.named(f"{P}-arc-controller", RELEASE)
    secret = run.named(f"{P}-arc-github-config", "kubernetes:core/v1:Secret")
    hooks = run.named(f"{P}-arc-runner-hooks", "kubernetes:core/v1:ConfigMap")
    for runner in ("cpu", "gpu", "gpu-x4"):
        depends_on = run.named(f"{P}-arc-{runner}", RELEASE).depends_on
        assert {controller.urn, secret.urn, hooks.urn} <= set(depends_on)
    # and the controller does not wait for any scale set (no cycle, controller outlives them)
    assert not any(f"{P}-arc-{r}" in u for r in ("cpu", "gpu") for u in controller.depends_on)


def test_releases_wait_for_the_system_node_group(run: ProgramRun) -> None:
    system = run.named(f"{P}-system", "eks:index:ManagedNodeGroup")
    assert system.urn in run.named(f"{P}-arc-controller", RELEASE).depends_on


# --- images -------------------------------------------------------------------------------------


def test_runners_run_the_pushed_images_by_digest(run: ProgramRun) -> None:
    images = {r.name: r.outputs["digest"] for r in run.of_type("docker-build:index:Image")}
    base_repo = run.named(f"{P}-runner-base-repo", "aws:ecr/repository:Repository")
    gpu_repo = run.named(f"{P}-runner-gpu-repo", "aws:ecr/repository:Repository")
    cpu_image = pod_spec(run, "cpu")["containers"][0]["image"]
    gpu_image = pod_spec(run, "gpu")["containers"][0]["image"]
    assert cpu_image == f"{base_repo.outputs['repositoryUrl']}@{images[f'{P}-runner-base-image']}"
    assert gpu_image == f"{gpu_repo.outputs['repositoryUrl']}@{images[f'{P}-runner-gpu-image']}"
    assert re.fullmatch(r".+@sha256:[0-9a-f]{64}", gpu_image)


def test_gpu_image_builds_on_the_pushed_base_image(run: ProgramRun) -> None:
    base = run.named(f"{P}-runner-base-image", "docker-build:index:Image")
    gpu = run.named(f"{P}-runner-gpu-image", "docker-build:index:Image").inputs
    base_url = run.named(f"{P}-runner-base-repo", "aws:ecr/repository:Repository").outputs[
        "repositoryUrl"
    ]
    assert gpu["buildArgs"] == {"BASE_IMAGE": f"{base_url}@{base.outputs['digest']}"}
    assert base.inputs["buildArgs"] == {"RUNNER_VERSION": RUNNER_VERSION}


def test_images_push_with_ecr_credentials_and_registry_cache(run: ProgramRun) -> None:
    image = run.named(f"{P}-runner-base-image", "docker-build:index:Image")
    url = run.named(f"{P}-runner-base-repo", "aws:ecr/repository:Repository").outputs[
        "repositoryUrl"
    ]
    inputs = image.inputs
    assert inputs["push"] is True
    assert inputs["buildOnPreview"] is False
    assert inputs["context"] == {"location": "docker/runner-base"}  # relative: no diff elsewhere
    assert inputs["platforms"] == ["linux/amd64"]
    (tag,) = inputs["tags"]
    assert tag.startswith(f"{url}:")
    (registry,) = image.masked_inputs["registries"]
    assert registry["address"] == url and registry["username"] == "AWS"
    assert registry["password"] == "[secret]"
    cache = f"{url}:{CACHE_TAG}"
    assert inputs["cacheFrom"] == [{"registry": {"ref": cache}}]
    assert inputs["cacheTo"][0]["registry"]["ref"] == cache
    assert inputs["cacheTo"][0]["registry"]["mode"] == "max"


def test_repositories_are_immutable_scanned_encrypted_and_expire_old_images(
    run: ProgramRun,
) -> None:
    repo = run.named(f"{P}-runner-gpu-repo", "aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [
        {"filter": CACHE_TAG, "filterType": "WILDCARD"}
    ]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"] == [
        {"encryptionType": "KMS", "kmsKey": run.outputs["kmsKeyArn"]}
    ]
    policy = run.named(f"{P}-runner-gpu-lifecycle", "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    rules = json.loads(policy.inputs["policy"])["rules"]
    assert rules[1]["selection"] == {
        "tagStatus": "any",
        "countType": "imageCountMoreThan",
        "countNumber": 20,
    }
    assert rules[0]["selection"]["tagStatus"] == "untagged"


def test_production_repositories_keep_their_images_on_delete(production: ProgramRun) -> None:
    repos = production.of_type("aws:ecr/repository:Repository")
    # runner-base, runner-gpu and the training image
    assert len(repos) == 3 and not any(r.inputs.get("forceDelete") for r in repos)


def test_official_image_when_images_are_not_built() -> None:
    run = build({**CONFIG, "mlplatform:arc": {**ARC, "buildImages": False}})
    assert not run.of_type("docker-build:index:Image")
    assert pod_spec(run, "gpu")["containers"][0]["image"] == OFFICIAL_RUNNER_IMAGE


def test_source_tag_is_the_git_revision_of_the_context(tmp_path: Path) -> None:
    context = tmp_path / "image"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    assert source_tag(context) == f"src-{content_digest(context)[:12]}"  # not a repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "."], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "image"], cwd=tmp_path, check=True)
    revision = subprocess.run(
        ["git", "log", "-1", "--format=%h"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    assert source_tag(context) == revision
    (context / "Dockerfile").write_text("FROM scratch\nLABEL x=y\n")
    assert source_tag(context) == f"{revision}-dirty-{content_digest(context)[:12]}"


def test_runner_dockerfile_pins_the_version_the_program_passes() -> None:
    dockerfile = (ROOT / "docker" / "runner-base" / "Dockerfile").read_text()
    assert f"ARG RUNNER_VERSION={RUNNER_VERSION}\n" in dockerfile
    assert "FROM ghcr.io/actions/actions-runner:${RUNNER_VERSION}" in dockerfile


@pytest.mark.parametrize("image", ["runner-base", "runner-gpu"])
def test_dockerfiles_are_hadolint_clean_with_a_dockerignore(image: str) -> None:
    directory = ROOT / "docker" / image
    assert (directory / ".dockerignore").is_file()
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(directory / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- hooks, run for real --------------------------------------------------------------------------

SCRIPTS = ROOT / "components" / "scripts"


def run_hook(
    name: str, tmp_path: Path, gpus: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run a hook with an empty PATH dir first, holding a fake nvidia-smi when `gpus` is set."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpus is not None:
        fake = bin_dir / "nvidia-smi"
        fake.write_text(f"#!/bin/sh\nprintf '%s\\n' {gpus}\n")
        fake.chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    return subprocess.run(
        ["bash", str(SCRIPTS / name)],
        capture_output=True,
        text=True,
        env={"PATH": path, "HOME": str(tmp_path), **env},
    )


@pytest.mark.parametrize("name", sorted(HOOK_SCRIPTS.values()))
def test_hooks_are_strict_and_shellcheck_clean(name: str) -> None:
    text = (SCRIPTS / name).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([str(shellcheck), str(SCRIPTS / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_job_started_cleans_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    (workspace / "old" / "deep").mkdir(parents=True)
    (workspace / "stale.txt").write_text("left by the last job")
    result = run_hook("runner-job-started.sh", tmp_path, GITHUB_WORKSPACE=str(workspace))
    assert result.returncode == 0, result.stderr
    assert workspace.is_dir() and not any(workspace.iterdir())
    assert "CPU runner" in result.stdout


def test_job_started_passes_healthy_gpus(tmp_path: Path) -> None:
    gpus = "'0, NVIDIA A10G, 23028 MiB, 0' '1, NVIDIA A10G, 23028 MiB, [N/A]'"
    result = run_hook("runner-job-started.sh", tmp_path, gpus, EXPECTED_GPUS="2")
    assert result.returncode == 0, result.stdout
    assert "2 GPU(s) healthy" in result.stdout


def test_job_started_refuses_uncorrected_ecc_errors(tmp_path: Path) -> None:
    gpus = "'0, NVIDIA A10G, 23028 MiB, 0' '1, NVIDIA A10G, 23028 MiB, 3'"
    result = run_hook("runner-job-started.sh", tmp_path, gpus, EXPECTED_GPUS="2")
    assert result.returncode == 1
    assert "GPU 1 has 3 uncorrected ECC error(s)" in result.stdout


def test_job_started_refuses_missing_gpus(tmp_path: Path) -> None:
    result = run_hook(
        "runner-job-started.sh", tmp_path, "'0, NVIDIA A10G, 23028 MiB, 0'", EXPECTED_GPUS="4"
    )
    assert result.returncode == 1
    assert "found 1 GPU(s), the runner class requests 4" in result.stdout


def test_job_started_fails_when_nvidia_smi_fails(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    result = run_hook("runner-job-started.sh", tmp_path)
    assert result.returncode == 1
    assert "GPU is not usable" in result.stdout


def test_job_completed_reports_and_cleans(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    workspace.mkdir()
    (workspace / "build.log").write_text("x" * 4096)
    temp = tmp_path / "temp"
    temp.mkdir()
    (temp / "t").write_text("t")
    gpus = "'index, utilization.gpu [%], memory.used [MiB]' '0, 97 %, 20000 MiB'"
    result = run_hook(
        "runner-job-completed.sh",
        tmp_path,
        gpus,
        GITHUB_WORKSPACE=str(workspace),
        RUNNER_TEMP=str(temp),
    )
    assert result.returncode == 0, result.stderr
    assert "workspace size:" in result.stdout and "97 %" in result.stdout
    assert not any(workspace.iterdir()) and not any(temp.iterdir())


# --- rendered manifests, validated ----------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_every_rendered_object_and_runner_pod_is_valid_kubernetes(
    stack: str, request: pytest.FixtureRequest
) -> None:
    planned: ProgramRun = request.getfixturevalue(stack)
    rendered = render(planned)
    kinds = sorted({obj["kind"] for obj in rendered.values()})
    expected = ["ConfigMap", "Namespace", "NetworkPolicy", "Pod", "Secret"]
    if stack == "production":  # its example training job
        expected = sorted([*expected, "HyperPodPyTorchJob", "ServiceAccount"])
    assert kinds == expected
    assert {n for n in rendered if n.startswith("pod-")} == {
        "pod-arc-runners-cpu-runner.yaml",
        "pod-arc-runners-gpu-runner.yaml",
    }
    version = kubernetes_version(planned)
    for name, obj in rendered.items():
        assert "PRIVATE KEY" not in json.dumps(obj), name
        if obj["kind"] in ("HyperPodPyTorchJob", "PyTorchJob"):
            # custom resources: our structural check, and their pod templates as core Pods
            assert check_job_structure(obj) == [], name
            for template in pod_templates(obj):
                pod = {"metadata": {"name": "p", **template["metadata"]}, "spec": template["spec"]}
                kubernetes_validate.validate(
                    {"apiVersion": "v1", "kind": "Pod", **pod}, version, strict=True
                )
            continue
        kubernetes_validate.validate(obj, version, strict=True)


def test_validation_does_reject_a_broken_pod(staging: ProgramRun) -> None:
    pod = render(staging)["pod-arc-runners-gpu-runner.yaml"]
    broken = {**pod, "spec": {**pod["spec"], "tolerations": [{"effect": "NoSchedule", "x": 1}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.34", strict=True)


def test_render_cli_reports_a_config_mistake_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlplatform.manifests import main

    (tmp_path / "Pulumi.yaml").write_text("name: mlplatform\nruntime: python\n")
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  mlplatform:owner: o\n  mlplatform:costCenter: c\n"
        "  mlplatform:arc: {githubConfigUrl: https://github.com/x}\n"
    )
    assert main(["dev", str(tmp_path / "out"), "--cwd", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Pulumi.dev.yaml: mlplatform:")
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_render_cli_writes_yaml_files(tmp_path: Path, staging: ProgramRun) -> None:
    paths = write(staging, tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(render(staging))
    secret = (tmp_path / "out" / "secret-arc-runners-github-config.yaml").read_text()
    assert "github_app_private_key: '[secret]'" in secret


# --- config ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"mlplatform:eks": None},
            "mlplatform:arc: needs the stack's EKS cluster (mlplatform:eks)",
        ),
        (
            {"mlplatform:githubAppPrivateKey": None},
            "mlplatform:githubAppPrivateKey: is required with arc.auth app "
            "(pulumi config set --secret mlplatform:githubAppPrivateKey < key.pem)",
        ),
        (
            {"mlplatform:arc": {**ARC, "githubAppId": None}},
            "mlplatform:arc.githubAppId: is required with auth app",
        ),
        (
            {"mlplatform:arc": {**ARC, "githubConfigUrl": "http://github.com/x"}},
            "mlplatform:arc.githubConfigUrl: 'http://github.com/x' is not a GitHub organization "
            "or repository URL (https://github.com/<org>[/<repo>])",
        ),
        (
            {"mlplatform:eks": {**EKS, "gpuNodeGroups": []}},
            "mlplatform:arc.runnerClasses[1].nodeGroup: a GPU runner class needs a GPU node "
            "group (eks.gpuNodeGroups)",
        ),
        (
            {
                "mlplatform:arc": {
                    **ARC,
                    "runnerClasses": [{"name": "gpu", "gpu": True, "nodeGroup": "nope"}],
                }
            },
            "mlplatform:arc.runnerClasses[0].nodeGroup: 'nope' is not a GPU node group",
        ),
        (
            {"mlplatform:arc": {**ARC, "runnerClasses": [{"name": "g", "gpu": True, "gpus": 2}]}},
            "mlplatform:arc.runnerClasses[0].gpus: 2 is more than a node of 'gpu' has (1)",
        ),
        (
            {"mlplatform:arc": {**ARC, "runnerClasses": [{"name": "c", "nodeGroup": "gpu"}]}},
            "mlplatform:arc.runnerClasses[0].nodeGroup: is for GPU runner classes (gpu: true)",
        ),
        (
            {"mlplatform:arc": {**ARC, "runnerClasses": [{"name": "c", "memory": "lots"}]}},
            "mlplatform:arc.runnerClasses[0].memory: 'lots' is not a Kubernetes quantity",
        ),
        (
            {"mlplatform:arc": {**ARC, "runnerClasses": [{"name": "c"}, {"name": "c"}]}},
            "mlplatform:arc.runnerClasses[1].name: 'c' is used twice",
        ),
        (
            {"mlplatform:arc": {**ARC, "auth": "token"}, "mlplatform:githubToken": "ghp_x"},
            "mlplatform:arc.githubAppId: is only for auth app",
        ),
        (
            {"mlplatform:arc": {**ARC, "runnerClasses": [{"name": "c", "gpus": 0}]}},
            "mlplatform:arc.runnerClasses[0].gpus: 0 is out of range (must be >= 1)",
        ),
        (
            {"mlplatform:arc": {**ARC, "githubToken": "ghp_x"}},
            # a secret is a top-level key (pulumi config set --secret mlplatform:githubToken)
            "mlplatform:arc.githubToken: is not a known key (did you mean 'githubConfigUrl'?)",
        ),
    ],
)
def test_arc_config_mistakes_name_the_key(overrides: dict[str, Any], message: str) -> None:
    raw = {**MINIMAL, **CONFIG, **overrides}
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "Pulumi.staging.yaml")
    assert str(caught.value) == f"Pulumi.staging.yaml: {message}"


def test_secret_config_never_shows_in_config_errors() -> None:
    raw = {**MINIMAL, **CONFIG, "mlplatform:arc": {**ARC, "githubAppId": "x"}}
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw, "f")
    assert "PRIVATE KEY" not in str(caught.value)
    config = parse_stack_config({**MINIMAL, **CONFIG}, "f")
    assert "PRIVATE KEY" not in repr(config)


def test_stack_files_keep_the_app_key_encrypted() -> None:
    """Read directly, a `secure:` value is an opaque placeholder, never a key in the clear."""
    import yaml

    for stack in ("staging", "production"):
        raw = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert set(raw["mlplatform:githubAppPrivateKey"]) == {"secure"}
        config = parse_stack_config(raw, f"Pulumi.{stack}.yaml")
        assert config.github_app_private_key is not None
        assert config.github_app_private_key.get_secret_value() == "[secret]"


# --- the component's Args, from Python ------------------------------------------------------------

APP: dict[str, Any] = {
    "github_config_url": "https://github.com/example-org",
    "github_app_id": 42,
    "github_app_installation_id": 4242,
    "github_app_private_key": PRIVATE_KEY,
    "gpu_node_groups": ["gpu"],
}


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (
            ArcRunnersArgs,
            {**APP, "github_app_private_key": None},
            "ArcRunnersArgs.github_app_private_key: is required with auth app",
        ),
        (
            ArcRunnersArgs,
            {**APP, "github_app_id": None},
            "ArcRunnersArgs.github_app_id: is required with auth app",
        ),
        (
            ArcRunnersArgs,
            {**APP, "auth": "token"},
            "ArcRunnersArgs.github_app_id: is only for auth app",
        ),
        (
            ArcRunnersArgs,
            {"github_config_url": "https://github.com/x", "auth": "token"},
            "ArcRunnersArgs.github_token: is required with auth token",
        ),
        (
            ArcRunnersArgs,
            {**APP, "github_token": "ghp_x"},
            "ArcRunnersArgs.github_token: is only for auth token",
        ),
        (
            ArcRunnersArgs,
            {**APP, "auth": "oauth"},
            "ArcRunnersArgs.auth: 'oauth' is not one of 'app' or 'token'",
        ),
        (
            ArcRunnersArgs,
            {**APP, "gpu_node_groups": []},  # the default classes include a GPU class
            "ArcRunnersArgs.runner_classes[1].node_group: a GPU runner class needs a GPU node "
            "group (gpu_node_groups)",
        ),
        (
            ArcRunnersArgs,
            {**APP, "runner_classes": [{"name": "g", "gpu": True, "nodeGroup": "nope"}]},
            "ArcRunnersArgs.runner_classes[0].node_group: 'nope' is not a GPU node group",
        ),
        (
            ArcRunnersArgs,
            {**APP, "runner_classes": []},
            "ArcRunnersArgs.runner_classes: must list at least one runner class",
        ),
        (
            ArcRunnersArgs,
            {**APP, "runner_classes": "cpu"},
            "ArcRunnersArgs.runner_classes: expected a list, got 'cpu'",
        ),
        (
            ArcRunnersArgs,
            {**APP, "runners_namespace": "arc-systems"},
            "ArcRunnersArgs.runners_namespace: must differ from controllerNamespace",
        ),
        (
            ArcRunnersArgs,
            {**APP, "github_config_url": "github.com/x"},
            "ArcRunnersArgs.github_config_url: 'github.com/x' is not a GitHub organization or "
            "repository URL (https://github.com/<org>[/<repo>])",
        ),
        (
            ArcRunnersArgs,
            {**APP, "provider": None},  # a provider arrives through opts
            "ArcRunnersArgs.provider: is not a known key",
        ),
        (
            ArcRunnersArgs,
            {**APP, "values_stack": "../x"},
            "ArcRunnersArgs.values_stack: '../x' does not match ^[A-Za-z0-9_.-]*$",
        ),
        (
            RunnerClass,
            {"name": "c", "node_group": "gpu"},
            "RunnerClass.node_group: is for GPU runner classes (gpu: true)",
        ),
        (
            RunnerClass,
            {"name": "g", "gpu": True, "gpus": 0},
            "RunnerClass.gpus: 0 is out of range (must be >= 1)",
        ),
        (
            RunnerClass,
            {"name": "c", "min_runners": 3, "max_runners": 2},
            "RunnerClass.max_runners: 2 is below minRunners",
        ),
        (
            RunnerClass,
            {"name": "c", "memory": "lots"},
            "RunnerClass.memory: 'lots' is not a Kubernetes quantity",
        ),
    ],
)
def test_bad_args_from_python_are_one_line_naming_the_argument(
    cls: Any, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArgsError) as caught:
        cls(**kwargs)
    assert str(caught.value) == message  # one line, and no secret in it


def test_secrets_stay_out_of_the_args_repr() -> None:
    args = ArcRunnersArgs(**APP)
    assert args.auth is GitHubAuth.APP
    assert "PRIVATE KEY" not in repr(args)


def test_a_gpu_class_requests_one_gpu_unless_told_and_a_cpu_class_none() -> None:
    gpu = RunnerClass(name="g", gpu=True)
    assert gpu.gpus == 1
    assert runner_pod_spec(gpu, "gpu")["containers"][0]["resources"]["limits"] == {
        "memory": "8Gi",
        "nvidia.com/gpu": 1,
    }
    cpu = runner_pod_spec(RunnerClass(name="c"), "system")
    assert cpu["containers"][0]["resources"]["limits"] == {"memory": "8Gi"}
    assert not any(e["name"] == "EXPECTED_GPUS" for e in cpu["containers"][0]["env"])
    assert cpu["nodeSelector"] == {"mlplatform.io/node-group": "system"}
    assert [(c.name, c.gpu) for c in DEFAULT_RUNNER_CLASSES] == [("cpu", False), ("gpu", True)]


def test_runners_accept_a_camel_case_mapping_and_take_the_cluster_from_opts() -> None:
    """What another Pulumi language hands the component; provider and ordering via opts."""

    def program() -> dict[str, Any]:
        provider = k8s.Provider("cluster", kubeconfig="{}")
        ready = k8s.core.v1.Namespace("ready", opts=pulumi.ResourceOptions(provider=provider))
        runners = ArcRunners(
            "direct",
            {  # type: ignore[arg-type]
                "githubConfigUrl": "https://github.com/example-org/repo",
                "auth": "token",
                "githubToken": "ghp_exampletoken",
                "systemNodeGroup": "core",
                "gpuNodeGroups": ["a100"],
                "runnerClasses": [{"name": "cpu"}, {"name": "gpu", "gpu": True, "gpus": 2}],
            },
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[ready]),
        )
        return {"scaleSets": runners.scale_sets}

    direct = run_program(program, project="consumer", stack="dev", config={})
    (provider,) = direct.of_type("pulumi:providers:kubernetes")
    (component,) = direct.of_type("mlplatform:index:ArcRunners")
    children = [r for r in direct.resources if r.parent == component.urn]
    # namespaces, secret, config map, network policy, controller, scale sets
    assert len(children) == 2 + 3 + 1 + 2
    assert all(r.provider == f"{provider.urn}::{provider.id}" for r in children)
    ready = direct.named("ready")
    for release_name in ("controller", "cpu", "gpu"):
        assert ready.urn in direct.named(f"direct-{release_name}", RELEASE).depends_on
    controller = direct.named("direct-controller", RELEASE).inputs["values"]
    assert controller["nodeSelector"] == {"mlplatform.io/node-group": "core"}
    gpu = direct.named("direct-gpu", RELEASE).inputs["values"]["template"]["spec"]
    assert gpu["nodeSelector"] == {"mlplatform.io/node-group": "a100"}
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert gpu["containers"][0]["image"] == OFFICIAL_RUNNER_IMAGE
    secret = direct.named("direct-github-config", "kubernetes:core/v1:Secret")
    assert unwrap_secret(secret.inputs["stringData"]) == {"github_token": "ghp_exampletoken"}
    assert direct.outputs["scaleSets"] == ["cpu", "gpu"]


@pytest.mark.parametrize("bad", [["SECRETPEM"], {"key": "SECRETPEM"}, 12345])
def test_a_malformed_credential_is_named_but_never_shown(bad: Any) -> None:
    from mlplatform.components.arc_runners import ArcRunnersArgs
    from mlplatform.components.schema import ArgsError

    with pytest.raises(ArgsError) as raised:
        ArcRunnersArgs(
            github_config_url="https://github.com/example-org",
            auth="token",
            github_token=bad,
        )
    assert str(raised.value) == "ArcRunnersArgs.github_token: expected a string, got '[secret]'"
    assert "SECRET" not in str(raised.value) and "12345" not in str(raised.value)


def test_a_malformed_secret_in_the_stack_file_is_never_shown() -> None:
    from mlplatform.config import ConfigError, parse_stack_config

    raw = yaml.safe_load((ROOT / "Pulumi.staging.yaml").read_text())["config"]
    raw["mlplatform:githubAppPrivateKey"] = '{"token": "ghp_SECRET"}'  # JSON-decoded by config
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, "Pulumi.staging.yaml")
    assert "ghp_SECRET" not in str(raised.value)
    assert str(raised.value).startswith("Pulumi.staging.yaml: mlplatform:githubAppPrivateKey: ")


@pytest.mark.parametrize("namespace", ["kube-system", "default", "kube-anything", "aws-hyperpod"])
def test_runners_never_take_over_a_namespace_of_the_cluster(namespace: str) -> None:
    from mlplatform.components.arc_runners import ArcRunnersSettings
    from mlplatform.components.schema import ArgsError

    with pytest.raises(ArgsError, match=r"^ArcRunnersSettings\.runners_namespace: .* owns$"):
        ArcRunnersSettings(
            github_config_url="https://github.com/example-org",
            auth="token",
            runners_namespace=namespace,
        )


def test_runners_and_training_jobs_do_not_share_a_namespace() -> None:
    from mlplatform.config import ConfigError, parse_stack_config

    raw = yaml.safe_load((ROOT / "Pulumi.production.yaml").read_text())["config"]
    job_namespace = raw["mlplatform:trainingJobs"][0].get("namespace", "training")
    raw["mlplatform:arc"] = {**raw["mlplatform:arc"], "runnersNamespace": job_namespace}
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(raw, "Pulumi.production.yaml")
    assert str(raised.value) == (
        "Pulumi.production.yaml: mlplatform:arc.runnersNamespace: "
        f"{job_namespace!r} is a trainingJobs namespace"
    )
