"""`mlplatform`: the command line of the platform.

    mlplatform plan STACK [--json] [--cwd DIR] [--policy [--policy-config FILE]]

`plan` runs the Pulumi project in DIR (default: the current directory) for STACK under mocks,
with the stack file's real config, and prints what `pulumi preview` would create plus an
estimated monthly cost. No cloud account, credentials or Pulumi CLI needed. `--policy` also runs
the guardrails of the policy pack (`policy/`) with the stack's policy config
(`policy/config-<STACK>.json` when present) and exits 3 on a mandatory violation.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pulumi

from components.plan import check_policy, plan_document, render_findings, render_text
from components.program import Project, ProjectError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlplatform", description=__doc__.split("\n\n")[0])
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
    return parser


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
