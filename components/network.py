"""A VPC for ML workloads: private subnets for compute, public subnets only to hold NAT gateways."""

import enum
import ipaddress

import pulumi
import pulumi_aws as aws
from pydantic import Field, field_validator

from mlplatform.components.schema import parse, schema


class NatGateways(enum.StrEnum):
    """How private subnets reach the internet."""

    NONE = "none"
    """No NAT: the VPC is fully private (VPC endpoints only)."""
    SINGLE = "single"
    """One NAT gateway for every AZ: cheap (staging)."""
    PER_AZ = "perAz"
    """A NAT gateway per AZ: survives an AZ outage (production)."""


@schema
class NetworkArgs:
    """How big and how available the VPC the platform creates is."""

    vpc_cidr: str = "10.0.0.0/16"
    """CIDR of the VPC (/16 to /22): 16 equal blocks, private subnets first, public from the 9th."""
    availability_zones: int = Field(default=2, ge=1, le=6)
    """Number of AZs to spread private (and NAT) subnets over."""
    nat_gateways: NatGateways = NatGateways.SINGLE
    """none (fully private), single (one NAT, cheap) or perAz (one per AZ, highly available)."""

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, cidr: str) -> str:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ValueError(f"{cidr!r} is not an IPv4 CIDR block") from None
        if not 16 <= network.prefixlen <= 22:
            raise ValueError(f"{cidr!r} must be between /16 and /22 to hold the subnets")
        return cidr


def subnet_cidrs(cidr: str, count: int) -> tuple[list[str], list[str]]:
    """Carve (private, public) subnets: 16 equal blocks, private first, public from the 9th."""
    blocks = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=4))
    return [str(b) for b in blocks[:count]], [str(b) for b in blocks[8 : 8 + count]]


class Network(pulumi.ComponentResource):
    """VPC, subnets across AZs, routing and NAT per `NetworkArgs`."""

    vpc_id: pulumi.Output[str]
    """The VPC's ID."""
    vpc_cidr: pulumi.Output[str]
    """The VPC's CIDR block."""
    private_subnet_ids: list[pulumi.Output[str]]
    """One private subnet per AZ, in AZ order."""
    public_subnet_ids: list[pulumi.Output[str]]
    """The public subnets holding the NAT gateways (none without NAT)."""
    private_route_table_ids: list[pulumi.Output[str]]
    """The private subnets' route tables, in the same order."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(NetworkArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        count = args.availability_zones
        private_cidrs, public_cidrs = subnet_cidrs(args.vpc_cidr, count)
        zones = aws.get_availability_zones_output(
            state="available", opts=pulumi.InvokeOutputOptions(parent=self)
        ).names

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
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
        if args.nat_gateways != NatGateways.NONE:
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
            nat_count = count if args.nat_gateways == NatGateways.PER_AZ else 1
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
