"""Security groups and their rules, written one way across components.

Rules are separate `aws.vpc.SecurityGroup{Ingress,Egress}Rule` resources (one per peer), each with
a description, because inline rules cannot be combined with separate ones and hide in diffs.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws

Direction = Literal["ingress", "egress"]


def security_group(
    name: str, description: str, vpc_id: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> aws.ec2.SecurityGroup:
    """A group with no inline rules; rules are added with `rule`."""
    return aws.ec2.SecurityGroup(
        name,
        description=description,
        vpc_id=vpc_id,
        revoke_rules_on_delete=True,
        tags={"Name": name},
        opts=opts,
    )


def rule(
    direction: Direction,
    name: str,
    group_id: pulumi.Input[str],
    description: str,
    opts: pulumi.ResourceOptions,
    *,
    ports: tuple[int, int] | None = (443, 443),
    protocol: str = "tcp",
    cidr: pulumi.Input[str] | None = None,
    peer_group_id: pulumi.Input[str] | None = None,
    prefix_list_id: pulumi.Input[str] | None = None,
) -> aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule:
    """One rule to exactly one peer (CIDR, security group or prefix list).

    `ports=None` with `protocol="-1"` means all traffic (e.g. EFA between cluster nodes).
    """
    if sum(peer is not None for peer in (cidr, peer_group_id, prefix_list_id)) != 1:
        raise ValueError(f"{name}: a rule needs exactly one peer")
    kind = (
        aws.vpc.SecurityGroupIngressRule
        if direction == "ingress"
        else (aws.vpc.SecurityGroupEgressRule)
    )
    from_port, to_port = ports if ports else (None, None)
    return kind(
        name,
        security_group_id=group_id,
        description=description,
        ip_protocol=protocol,
        from_port=from_port,
        to_port=to_port,
        cidr_ipv4=cidr,
        referenced_security_group_id=peer_group_id,
        prefix_list_id=prefix_list_id,
        opts=opts,
    )
