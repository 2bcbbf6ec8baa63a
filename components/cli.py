"""`mlplatform`: the command line of the platform.

    mlplatform plan STACK [--json] [--cwd DIR]

`plan` runs the Pulumi project in DIR (default: the current directory) for STACK under mocks,
with the stack file's real config, and prints what `pulumi preview` would create plus an
estimated monthly cost. No cloud account, credentials or Pulumi CLI needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pulumi

from components.plan import plan_document, render_text
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        project = Project.load(args.cwd.resolve())
        run = project.run(args.stack)
    except (ProjectError, pulumi.RunError) as error:
        # Config and project mistakes are the user's to fix: one line, no traceback.
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(plan_document(run), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(render_text(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
