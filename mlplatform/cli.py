"""`mlplatform`: the command line of the platform.

    mlplatform plan STACK [--json] [--cwd DIR] [--policy [--policy-config FILE]]
    mlplatform manifests STACK DIR [--cwd DIR]
    mlplatform train submit --engine sagemaker --recipe R --instance-type T --instance-count N

`plan` runs the Pulumi project in DIR (default: the current directory) for STACK under mocks,
with the stack file's real config, and prints what `pulumi preview` would create plus an
estimated monthly cost. No cloud account, credentials or Pulumi CLI needed. `--policy` also runs
the guardrails of the policy pack (`policy/`) with the stack's policy config
(`policy/config-<STACK>.json` when present) and exits 3 on a mandatory violation.

`train submit` starts a SageMaker training job of the platform's training image with recipe R
(a YAML file or a name in training/configs/). The stack's resources come from `--outputs FILE`
(`pulumi stack output --json > FILE`) or from the individual options, which win. HyperPod and
EKS jobs are deployed by Pulumi from the stack's `trainingJobs` instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pulumi

from mlplatform import __version__, manifests
from mlplatform.plan import check_policy, plan_document, render_findings, render_text
from mlplatform.program import Project, ProjectError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"mlplatform {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser(
        "plan", help="offline plan of a stack: resources, settings, estimated monthly cost"
    )
    plan.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    plan.add_argument("--json", action="store_true", help="print one JSON object")
    plan.add_argument(
        "--cwd", type=Path, default=Path.cwd(), help="project directory (default: current)"
    )
    plan.add_argument("--policy", action="store_true", help="check the plan against the guardrails")
    plan.add_argument(
        "--policy-config",
        type=Path,
        help="policy config JSON (default: policy/config-<stack>.json in the project, if any)",
    )
    render = commands.add_parser(
        "manifests", help="write the stack's Kubernetes objects and runner pods as YAML files"
    )
    render.add_argument("stack", help="stack name: reads Pulumi.<stack>.yaml")
    render.add_argument("directory", type=Path, help="where the YAML files go")
    render.add_argument(
        "--cwd", type=Path, default=Path.cwd(), help="project directory (default: current)"
    )
    _train_parser(commands)
    return parser


def _train_parser(commands: Any) -> None:
    train = commands.add_parser("train", help="training jobs")
    actions = train.add_subparsers(dest="action", required=True)
    submit = actions.add_parser("submit", help="submit a SageMaker training job")
    submit.add_argument(
        "--engine",
        required=True,
        choices=["sagemaker"],
        help="sagemaker (hyperpod and eks jobs are deployed from the stack's trainingJobs)",
    )
    submit.add_argument("--recipe", required=True, help="recipe YAML file or name")
    submit.add_argument("--instance-type", required=True, help="e.g. ml.p5.48xlarge")
    submit.add_argument("--instance-count", type=int, default=1, help="nodes (default 1)")
    submit.add_argument("--job-name", help="default: <recipe>-<UTC time>")
    submit.add_argument("--outputs", type=Path, help="`pulumi stack output --json` of the stack")
    submit.add_argument("--image", help="training image URI (default: output trainingImage)")
    submit.add_argument("--role-arn", help="execution role (default: output notebookRoleArn)")
    submit.add_argument("--models-bucket", help="default: output modelsBucket")
    submit.add_argument("--kms-key-arn", help="default: output kmsKeyArn")
    submit.add_argument(
        "--subnet", action="append", help="repeatable (default: output privateSubnetIds)"
    )
    submit.add_argument(
        "--security-group",
        action="append",
        help="repeatable; must allow traffic between the job's nodes "
        "(default: output trainingSecurityGroupId)",
    )
    submit.add_argument("--data", help="s3:// prefix of the training data (channel `train`)")
    submit.add_argument("--spot", action="store_true", help="managed spot training")
    submit.add_argument("--max-runtime-hours", type=int, default=120)
    submit.add_argument("--volume-size-gb", type=int, default=500)
    submit.add_argument("--region", help="default: the AWS configuration's region")
    submit.add_argument(
        "--dry-run", action="store_true", help="print the CreateTrainingJob request, send nothing"
    )


def _submit(args: argparse.Namespace) -> int:
    from mlplatform import sagemaker_training as sm

    outputs: dict[str, Any] = {}
    if args.outputs is not None:
        try:
            outputs = json.loads(args.outputs.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise sm.SubmitError(
                f"--outputs: {args.outputs}: not readable JSON ({error})"
            ) from None

    def pick(value: Any, output: str, option: str, required: bool = True) -> Any:
        chosen = value if value is not None else outputs.get(output)
        if required and not chosen:
            raise sm.SubmitError(f"{option}: required (or output {output!r} in --outputs)")
        return chosen

    recipe_name, recipe = sm.load_recipe(args.recipe)
    subnets = pick(args.subnet, "privateSubnetIds", "--subnet", required=False) or []
    groups = pick(args.security_group, "trainingSecurityGroupId", "--security-group", False)
    groups = [groups] if isinstance(groups, str) else list(groups or [])
    if subnets and not groups:
        raise sm.SubmitError("--security-group: required with the job's subnets")
    job = sm.SageMakerJob(
        name=args.job_name or sm.default_job_name(recipe_name),
        image=pick(args.image, "trainingImage", "--image"),
        role_arn=pick(args.role_arn, "notebookRoleArn", "--role-arn"),
        recipe_name=recipe_name,
        recipe=recipe,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        models_bucket=pick(args.models_bucket, "modelsBucket", "--models-bucket"),
        kms_key_arn=pick(args.kms_key_arn, "kmsKeyArn", "--kms-key-arn", required=False),
        subnet_ids=list(subnets),
        security_group_ids=groups,
        data_uri=args.data,
        volume_size_gb=args.volume_size_gb,
        max_runtime_hours=args.max_runtime_hours,
        spot=args.spot,
        tags={"project": "mlplatform", "recipe": recipe_name},
    )
    if args.dry_run:
        json.dump(sm.create_training_job_request(job), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    import boto3

    arn = sm.submit(job, boto3.client("sagemaker", region_name=args.region))
    print(f"submitted {job.name}: {arn}")
    print(f"checkpoints: {job.checkpoint_s3_uri}")
    print(f"model: {job.model_artifact_uri}")
    return 0


def _policy_config(args: argparse.Namespace, project_dir: Path) -> dict[str, Any]:
    """The stack's policy config: levels and settings per rule, as `pulumi preview` takes it."""
    path = args.policy_config or project_dir / "policy" / f"config-{args.stack}.json"
    if args.policy_config is None and not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProjectError(f"{path}: no such policy config") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProjectError(f"{path}: not a readable JSON policy config ({error})") from None
    if not isinstance(config, dict):
        raise ProjectError(f"{path}: policy config must be a JSON object")
    return config


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        from botocore.exceptions import BotoCoreError, ClientError

        from mlplatform.sagemaker_training import SubmitError

        try:
            return _submit(args)
        except (SubmitError, BotoCoreError, ClientError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    if args.command == "manifests":
        return manifests.main([args.stack, str(args.directory), "--cwd", str(args.cwd)])
    try:
        project = Project.load(args.cwd.resolve())
        policy_config = _policy_config(args, project.directory) if args.policy else None
        run = project.run(args.stack)
    except (ProjectError, pulumi.RunError) as error:
        # Config and project mistakes are the user's to fix: one line, no traceback.
        print(f"error: {error}", file=sys.stderr)
        return 1
    findings = check_policy(run, policy_config) if policy_config is not None else None
    if args.json:
        document = plan_document(run)
        if findings is not None:
            document["policy"] = {"findings": [asdict(f) for f in findings]}
        json.dump(document, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(render_text(run))
        if findings is not None:
            print()
            print(render_findings(findings))
    if findings and any(f.level == "mandatory" for f in findings):
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
