"""What the lifecycle scripts need to know, read from provisioning_parameters.json.

    node_info.py params PARAMS                      -> workload manager, FSx DNS name, mount name,
                                                      mount path (one per line, empty if absent)
    node_info.py slurm-role PARAMS RESOURCE_CONFIG IP -> role, instance group, controller IP

RESOURCE_CONFIG is the file HyperPod writes on every node (/opt/ml/config/resource_config.json):
its InstanceGroups list each group's instances with their IP addresses, which is how a node
finds its own group. Standard library only: it runs on the HyperPod AMI's python3.
"""

from __future__ import annotations

import json
import sys


def params(path: str) -> list[str]:
    with open(path) as f:
        p = json.load(f)
    return [
        p.get("workload_manager", ""),
        p.get("fsx_dns_name", ""),
        p.get("fsx_mountname", ""),
        p.get("fsx_mount_path", "/fsx"),
    ]


def slurm_role(params_path: str, resource_config_path: str, ip: str) -> list[str]:
    with open(params_path) as f:
        p = json.load(f)
    with open(resource_config_path) as f:
        groups = json.load(f)["InstanceGroups"]
    ips = {g["Name"]: [i["CustomerIpAddress"] for i in g.get("Instances", [])] for g in groups}
    controller_ips = ips.get(p["controller_group"], [])
    if not controller_ips:
        raise SystemExit(f"controller group {p['controller_group']!r} has no instance")
    mine = next((name for name, addresses in ips.items() if ip in addresses), None)
    if mine is None:
        raise SystemExit(f"no instance group has an instance with IP {ip}")
    if mine == p["controller_group"]:
        role = "controller"
    elif mine == p.get("login_group"):
        role = "login"
    elif mine in {w["instance_group_name"] for w in p.get("worker_groups", [])}:
        role = "compute"
    else:
        raise SystemExit(f"instance group {mine!r} is not in provisioning_parameters.json")
    return [role, mine, controller_ips[0]]


def main(argv: list[str]) -> None:
    if len(argv) == 2 and argv[0] == "params":
        lines = params(argv[1])
    elif len(argv) == 4 and argv[0] == "slurm-role":
        lines = slurm_role(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(__doc__)
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
