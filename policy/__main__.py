"""The mlplatform policy pack: `pulumi preview --policy-pack policy
--policy-pack-config policy/config-<stack>.json`.

The rules live in `mlplatform/guardrails.py`; this file only adapts the policy analyzer's
arguments to the `Resource` view the rules take, so the offline `mlplatform plan --policy` and
`pulumi preview` judge a stack with the same code.
"""

import sys
from pathlib import Path

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from mlplatform.guardrails import RULES, Resource, Rule

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.defaults:
        return None
    return PolicyConfigSchema(
        properties={
            key: {"type": _JSON_TYPES[type(value)], "default": value}
            for key, value in rule.defaults.items()
        }
    )


def _resource(args: ResourceValidationArgs) -> Resource:
    return Resource(
        type=args.resource_type,
        name=args.name,
        urn=args.urn,
        props=args.props,
        protect=args.opts.protect,
        provider_props=args.provider.props if args.provider else {},
    )


def _policy(rule: Rule):
    if rule.check is not None:
        check = rule.check

        def validate(args, report_violation):
            for message in check(_resource(args), args.get_config()):
                report_violation(message)

        return ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=validate,
            config_schema=_schema(rule),
        )

    stack_check = rule.stack_check
    assert stack_check is not None

    def validate_stack(args: StackValidationArgs, report_violation):
        resources = [
            Resource(
                type=r.resource_type,
                name=r.name,
                urn=r.urn,
                props=r.props,
                protect=r.opts.protect,
                provider_props=r.provider.props if r.provider else {},
                property_dependencies={
                    key: [d.urn for d in deps] for key, deps in r.property_dependencies.items()
                },
            )
            for r in args.resources
        ]
        for urn, message in stack_check(resources, args.get_config()):
            report_violation(message, urn or None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate_stack,
        config_schema=_schema(rule),
    )


PolicyPack(
    name="mlplatform-guardrails",
    enforcement_level=EnforcementLevel.ADVISORY,  # stacks raise it in config-<stack>.json
    policies=[_policy(rule) for rule in RULES],
)
