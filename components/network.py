"""A VPC for ML workloads: private subnets for compute, public subnets only to hold NAT gateways."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

NatMode = Literal["none", "single", "perAz"]


@dataclass(frozen=True)
class NetworkArgs:
    """How big and how available the network is.

    `nat_gateways`: `single` is cheap (one NAT for all AZs, staging), `perAz` survives an AZ
    outage (production), `none` keeps the VPC fully private (VPC endpoints only).
    """

    cidr: str = "10.0.0.0/16"
    availability_zones: int = 2
    nat_gateways: NatMode = "single"


@dataclass(frozen=True)
class ExistingNetwork:
    """A VPC created elsewhere (another stack or team) that the platform adopts by ID."""

    vpc_id: pulumi.Input[str]
    private_subnet_ids: list[pulumi.Input[str]]
    private_route_table_ids: list[pulumi.Input[str]]


def subnet_cidrs(cidr: str, count: int) -> tuple[list[str], list[str]]:
    """Carve (private, public) subnets: 16 equal blocks, private first, public from the 9th."""
    blocks = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=4))
    return [str(b) for b in blocks[:count]], [str(b) for b in blocks[8 : 8 + count]]


class Network(pulumi.ComponentResource):
    """VPC, subnets across AZs, routing and NAT per `NetworkArgs`."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    private_subnet_ids: list[pulumi.Output[str]]
    public_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        count = args.availability_zones
        private_cidrs, public_cidrs = subnet_cidrs(args.cidr, count)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,  # required for private DNS of interface endpoints
            enable_dns_support=True,
            tags={"Name": name},
            opts=child,
        )
        # The default security group allows all traffic between its members: strip its rules.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags={"Name": f"{name}-default-locked"}, opts=child
        )

        def zone(i: int) -> pulumi.Output[str]:
            return zones.apply(lambda names: names[i])

        private = [
            aws.ec2.Subnet(
                f"{name}-private-{i}",
                vpc_id=vpc.id,
                cidr_block=private_cidrs[i],
                availability_zone=zone(i),
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-private-{i}", "tier": "private"},
                opts=child,
            )
            for i in range(count)
        ]
        public: list[aws.ec2.Subnet] = []
        nats: list[aws.ec2.NatGateway] = []
        if args.nat_gateways != "none":
            igw = aws.ec2.InternetGateway(
                f"{name}-igw", vpc_id=vpc.id, tags={"Name": name}, opts=child
            )
            public_rt = aws.ec2.RouteTable(
                f"{name}-public-rt", vpc_id=vpc.id, tags={"Name": f"{name}-public"}, opts=child
            )
            aws.ec2.Route(
                f"{name}-public-default",
                route_table_id=public_rt.id,
                destination_cidr_block="0.0.0.0/0",
                gateway_id=igw.id,
                opts=child,
            )
            for i in range(count):
                subnet = aws.ec2.Subnet(
                    f"{name}-public-{i}",
                    vpc_id=vpc.id,
                    cidr_block=public_cidrs[i],
                    availability_zone=zone(i),
                    map_public_ip_on_launch=False,  # only NAT gateways live here
                    tags={"Name": f"{name}-public-{i}", "tier": "public"},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-public-{i}",
                    subnet_id=subnet.id,
                    route_table_id=public_rt.id,
                    opts=child,
                )
                public.append(subnet)
            nat_count = count if args.nat_gateways == "perAz" else 1
            for i in range(nat_count):
                eip = aws.ec2.Eip(
                    f"{name}-nat-{i}", domain="vpc", tags={"Name": f"{name}-nat-{i}"}, opts=child
                )
                nats.append(
                    aws.ec2.NatGateway(
                        f"{name}-nat-{i}",
                        allocation_id=eip.id,
                        subnet_id=public[i].id,
                        tags={"Name": f"{name}-nat-{i}"},
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                    )
                )

        route_tables = []
        for i, subnet in enumerate(private):
            table = aws.ec2.RouteTable(
                f"{name}-private-rt-{i}",
                vpc_id=vpc.id,
                tags={"Name": f"{name}-private-{i}"},
                opts=child,
            )
            if nats:
                aws.ec2.Route(
                    f"{name}-private-default-{i}",
                    route_table_id=table.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nats[min(i, len(nats) - 1)].id,
                    opts=child,
                )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{i}", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            route_tables.append(table)

        self.vpc_id = vpc.id
        self.vpc_cidr = vpc.cidr_block
        self.private_subnet_ids = [s.id for s in private]
        self.public_subnet_ids = [s.id for s in public]
        self.private_route_table_ids = [t.id for t in route_tables]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "privateSubnetIds": self.private_subnet_ids,
                "publicSubnetIds": self.public_subnet_ids,
            }
        )
