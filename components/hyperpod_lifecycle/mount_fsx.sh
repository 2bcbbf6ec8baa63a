#!/bin/bash
# Mount an FSx for Lustre file system and keep it mounted across reboots.
#   mount_fsx.sh DNS_NAME MOUNT_NAME MOUNT_PATH
# Idempotent: a second run neither duplicates the fstab entry nor mounts twice. FSTAB can be
# overridden for tests; RETRIES and RETRY_SECONDS bound the wait for the file system.
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 DNS_NAME MOUNT_NAME MOUNT_PATH" >&2
    exit 2
fi
DNS_NAME="$1"
MOUNT_NAME="$2"
MOUNT_PATH="$3"
FSTAB="${FSTAB:-/etc/fstab}"
RETRIES="${RETRIES:-5}"
RETRY_SECONDS="${RETRY_SECONDS:-10}"

SOURCE="${DNS_NAME}@tcp:/${MOUNT_NAME}"
OPTIONS="noatime,flock,_netdev,x-systemd.automount,x-systemd.requires=network-online.target"

mkdir -p "${MOUNT_PATH}"
if ! grep -qE "^[^#]*[[:space:]]${MOUNT_PATH}[[:space:]]+lustre[[:space:]]" "${FSTAB}" 2>/dev/null; then
    echo "${SOURCE} ${MOUNT_PATH} lustre ${OPTIONS} 0 0" >>"${FSTAB}"
fi

if mountpoint -q "${MOUNT_PATH}"; then
    echo "mount_fsx: ${MOUNT_PATH} is already mounted"
    exit 0
fi
for attempt in $(seq 1 "${RETRIES}"); do
    if mount -t lustre -o noatime,flock "${SOURCE}" "${MOUNT_PATH}"; then
        echo "mount_fsx: mounted ${SOURCE} on ${MOUNT_PATH}"
        exit 0
    fi
    echo "mount_fsx: attempt ${attempt}/${RETRIES} failed, retrying in ${RETRY_SECONDS}s" >&2
    sleep "${RETRY_SECONDS}"
done
echo "mount_fsx: could not mount ${SOURCE} on ${MOUNT_PATH}" >&2
exit 1
