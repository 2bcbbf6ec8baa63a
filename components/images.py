"""Container images built and pushed by Pulumi: an ECR repository and a docker-build Image.

One module for every image the platform ships (runner images, the training image): the
repository is KMS-encrypted, scans on push, keeps its tags immutable (except the build cache's)
and expires old images; the image is built with BuildKit (`pulumi_docker_build`), cached in the
registry, tagged with the git revision of its build context and consumed by digest.
"""

import enum
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build
from pydantic import Field, field_validator, model_validator

from mlplatform.components.schema import SettingError, parse, schema

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = REPO_ROOT / "docker"
CACHE_TAG = "buildcache"


# Docker's tag grammar (distribution/reference).
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImagePlatform(enum.StrEnum):
    """The OS/architecture an image is built for."""

    LINUX_AMD64 = "linux/amd64"
    """x86-64: the GPU instance families (p4d, p5, g5, g6...)."""
    LINUX_ARM64 = "linux/arm64"
    """64-bit Arm: Graviton."""


@schema
class ContainerImageArgs:
    """One image: its build directory, Dockerfile and build arguments, and its repository."""

    context: str
    """The build context directory (e.g. `docker/runner-base`), relative to the project."""
    dockerfile: str | None = None
    """The Dockerfile (default: `<context>/Dockerfile`)."""
    build_args: dict[str, pulumi.Input[str]] = Field(default_factory=dict)
    """`ARG` values of the Dockerfile (`BASE_IMAGE` may be another image's `image_ref`)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """KMS key that encrypts the repository (default: ECR's AWS-managed key)."""
    keep_images: int = Field(default=20, ge=1, le=1000)
    """Tagged images kept; older ones expire."""
    untagged_days: int = Field(default=7, ge=1, le=3650)
    """Days before untagged images (superseded cache layers) expire."""
    platform: ImagePlatform = ImagePlatform.LINUX_AMD64
    """The platform the image is built for."""
    force_delete: bool = False
    """Delete the repository with its images on `pulumi destroy` (staging)."""
    tag: str | None = None
    """The image's tag (default: the git revision of `context`, see `source_tag`)."""

    @field_validator("tag")
    @classmethod
    def _tag(cls, tag: str | None) -> str | None:
        if tag is not None and not _TAG.match(tag):
            raise ValueError(f"{tag!r} is not a Docker tag (letters, digits, _ . -, at most 128)")
        if tag == CACHE_TAG:
            raise ValueError(f"{tag!r} is the build cache's tag, the only mutable one")
        return tag

    @model_validator(mode="after")
    def _sources(self) -> "ContainerImageArgs":
        if not Path(self.context).is_dir():
            raise SettingError("context", f"{self.context!r} is not a directory")
        if not Path(self.dockerfile_path).is_file():
            key = "dockerfile" if self.dockerfile else "context"
            raise SettingError(key, f"{self.dockerfile_path!r} is not a file")
        return self

    @property
    def dockerfile_path(self) -> str:
        return self.dockerfile or str(Path(self.context) / "Dockerfile")


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
    """The ECR repository's URL (`<registry>/<name>`)."""
    repository_arn: pulumi.Output[str]
    """The ECR repository's ARN."""
    tag: pulumi.Output[str]
    """The tag the image was pushed with."""
    digest: pulumi.Output[str]
    """The pushed image's digest (`sha256:...`)."""
    image_ref: pulumi.Output[str]
    """`<repository>@sha256:...`: what workloads should run."""

    def __init__(
        self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        args = parse(ContainerImageArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

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

        tag = args.tag or source_tag(Path(args.context))
        url = repository.repository_url
        auth = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        cache_ref = pulumi.Output.concat(url, ":", CACHE_TAG)
        image = docker_build.Image(
            f"{name}-image",
            push=True,
            context=docker_build.BuildContextArgs(location=build_path(Path(args.context))),
            dockerfile=docker_build.DockerfileArgs(location=build_path(Path(args.dockerfile_path))),
            # `pulumi preview` (CI, no Docker daemon) shows the build; `pulumi up` runs it.
            build_on_preview=False,
            platforms=[docker_build.Platform(str(args.platform))],
            build_args=dict(args.build_args) or None,
            tags=[pulumi.Output.concat(url, ":", tag)],
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
        self.tag = pulumi.Output.from_input(tag)
        self.digest = image.digest
        self.image_ref = pulumi.Output.concat(url, "@", image.digest)
        self.register_outputs(
            {
                "repositoryUrl": self.repository_url,
                "repositoryArn": self.repository_arn,
                "tag": self.tag,
                "digest": self.digest,
                "imageRef": self.image_ref,
            }
        )
