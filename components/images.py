"""Container images built and pushed by Pulumi: an ECR repository and a docker-build Image.

One module for every image the platform ships (runner images, the training image): the
repository is KMS-encrypted, scans on push, keeps its tags immutable (except the build cache's)
and expires old images; the image is built with BuildKit (`pulumi_docker_build`), cached in the
registry, tagged with the git revision of its build context and consumed by digest.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = REPO_ROOT / "docker"
CACHE_TAG = "buildcache"


@dataclass(frozen=True)
class ContainerImageArgs:
    """One image. `context` is its build directory (e.g. `docker/runner-base`)."""

    context: Path
    dockerfile: Path | None = None  # default: <context>/Dockerfile
    build_args: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    kms_key_arn: pulumi.Input[str] | None = None  # None: ECR's AWS-managed key
    keep_images: int = 20
    untagged_days: int = 7
    platform: str = "linux/amd64"
    force_delete: bool = False  # delete the repository with its images (staging)
    # The tag; by default the git revision of `context` (see `source_tag`).
    tag: str | None = None


def source_tag(context: Path) -> str:
    """The git revision that last changed `context`, plus a content digest if it is dirty.

    Tags are immutable, so a changed but uncommitted context must get a new tag; without git
    (an unpacked source tree) the tag is the content digest alone.
    """
    digest = content_digest(context)[:12]
    try:
        revision = _git(context, "log", "-1", "--format=%h", "--", ".")
        dirty = _git(context, "status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return f"src-{digest}"
    if not revision:
        return f"src-{digest}"
    return f"{revision}-dirty-{digest}" if dirty else revision


def content_digest(context: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file under `context`."""
    sha = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(context)).encode() + b"\0")
        sha.update(path.read_bytes() + b"\0")
    return sha.hexdigest()


def build_path(path: Path) -> str:
    """`path` relative to the working directory (the Pulumi project) when it lies inside it.

    Absolute paths would put this checkout's location into the state, and every other checkout
    (CI, a colleague's) would then show a diff on the image.
    """
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _git(context: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=context, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def lifecycle_policy(keep_images: int, untagged_days: int) -> str:
    """Expire untagged images after `untagged_days`; keep the newest `keep_images` others."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {untagged_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the newest {keep_images} images",
                    "selection": {
                        "tagStatus": "any",
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_images,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


class ContainerImage(pulumi.ComponentResource):
    """ECR repository + image built from `args.context` and pushed to it."""

    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    tag: str
    digest: pulumi.Output[str]
    # `<repository>@sha256:...`: what workloads should run.
    image_ref: pulumi.Output[str]

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlplatform:index:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        dockerfile = args.dockerfile or args.context / "Dockerfile"
        if not dockerfile.is_file():
            raise FileNotFoundError(f"{name}: {dockerfile} does not exist")

        repository = aws.ecr.Repository(
            f"{name}-repo",
            name=name,
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            # Only the build cache is overwritten in place; release tags never are.
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                    filter=CACHE_TAG, filter_type="WILDCARD"
                )
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn
                )
            ],
            force_delete=args.force_delete,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=lifecycle_policy(args.keep_images, args.untagged_days),
            opts=child,
        )

        self.tag = args.tag or source_tag(args.context)
        url = repository.repository_url
        auth = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        cache_ref = pulumi.Output.concat(url, ":", CACHE_TAG)
        image = docker_build.Image(
            f"{name}-image",
            push=True,
            context=docker_build.BuildContextArgs(location=build_path(args.context)),
            dockerfile=docker_build.DockerfileArgs(location=build_path(dockerfile)),
            # `pulumi preview` (CI, no Docker daemon) shows the build; `pulumi up` runs it.
            build_on_preview=False,
            platforms=[docker_build.Platform(args.platform)],
            build_args=dict(args.build_args) or None,
            tags=[pulumi.Output.concat(url, ":", self.tag)],
            registries=[
                docker_build.RegistryArgs(
                    address=url,
                    username=auth.user_name,
                    password=pulumi.Output.secret(auth.password),
                )
            ],
            cache_from=[
                docker_build.CacheFromArgs(
                    registry=docker_build.CacheFromRegistryArgs(ref=cache_ref)
                )
            ],
            cache_to=[
                docker_build.CacheToArgs(
                    registry=docker_build.CacheToRegistryArgs(
                        ref=cache_ref,
                        mode=docker_build.CacheMode.MAX,
                        image_manifest=True,
                        oci_media_types=True,
                    )
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[repository]),
        )
        self.repository_url = url
        self.repository_arn = repository.arn
        self.digest = image.digest
        self.image_ref = pulumi.Output.concat(url, "@", image.digest)
        self.register_outputs({"repositoryUrl": url, "tag": self.tag, "imageRef": self.image_ref})
