#!/bin/bash
# Start the Slurm daemon this node's role needs. HyperPod writes slurm.conf from
# provisioning_parameters.json; this script only starts (and enables) the daemons.
#   start_slurm.sh controller|login|compute CONTROLLER_IP
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 controller|login|compute CONTROLLER_IP" >&2
    exit 2
fi
ROLE="$1"
CONTROLLER_IP="$2"

case "${ROLE}" in
controller)
    systemctl enable --now slurmctld
    ;;
compute)
    echo "start_slurm: controller at ${CONTROLLER_IP}"
    systemctl enable --now slurmd
    ;;
login)
    # Login nodes submit jobs; they run no Slurm daemon of their own.
    echo "start_slurm: login node, controller at ${CONTROLLER_IP}"
    ;;
*)
    echo "start_slurm: unknown role '${ROLE}'" >&2
    exit 2
    ;;
esac
