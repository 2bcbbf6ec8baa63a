"""An S3 bucket that is private, encrypted, versioned and TLS-only, with tidy lifecycle rules.

In pulumi-aws 7 each bucket setting is its own resource; this component keeps them together so no
consumer ends up with a bucket that lacks one of them.
"""

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from mlplatform.components.iam import deny_insecure_transport, policy_document
from mlplatform.components.schema import SettingError, parse, schema


@schema
class BucketLifecycle:
    """How long a bucket keeps what it no longer needs (shared by every bucket of a stack)."""

    noncurrent_version_days: int = Field(default=30, ge=1, le=3650)
    """Days before noncurrent object versions expire."""
    abort_multipart_days: int = Field(default=7, ge=1, le=365)
    """Days before incomplete multipart uploads are aborted."""


@schema
class SecureBucketArgs(BucketLifecycle):
    """A private, encrypted, versioned, TLS-only bucket."""

    kms_key_arn: pulumi.Input[str]
    """KMS key for SSE-KMS (with an S3 bucket key)."""
    protect: bool = False
    """Keep the bucket and its settings through `pulumi destroy`, and refuse deletes."""
    force_destroy: bool = False
    """Let a non-protected bucket be deleted with objects in it (staging)."""
    prefixes: Sequence[str] = ()
    """Top-level prefixes to create as empty folder objects."""

    @model_validator(mode="after")
    def _protect_or_destroy(self) -> "SecureBucketArgs":
        if self.protect and self.force_destroy:
            raise SettingError("force_destroy", "cannot be true while protect is true")
        return self


class SecureBucket(pulumi.ComponentResource):
    """The bucket plus ownership, public access block, versioning, SSE-KMS, lifecycle, policy."""

    bucket_name: pulumi.Output[str]
    """The bucket's name."""
    arn: pulumi.Output[str]
    """The bucket's ARN."""

    def __init__(
        self,
        name: str,
        args: SecureBucketArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = parse(SecureBucketArgs, args)  # a mapping when another language calls
        super().__init__("mlplatform:index:SecureBucket", name, None, opts)
        # Data protection applies to every piece: deleting the versioning or encryption resource
        # would otherwise weaken a bucket that is itself retained.
        keep = pulumi.ResourceOptions(
            parent=self, protect=args.protect, retain_on_delete=args.protect
        )

        bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, opts=keep)
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},  # ACLs off
            opts=keep,
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=keep,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=keep,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": args.kms_key_arn,
                    },
                    # One data key per bucket instead of per object: ~99% fewer KMS calls.
                    "bucket_key_enabled": True,
                }
            ],
            opts=keep,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-noncurrent-versions",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": args.noncurrent_version_days
                    },
                },
                {
                    "id": "abort-incomplete-multipart-uploads",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": args.abort_multipart_days
                    },
                },
            ],
            opts=keep,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=policy_document([deny_insecure_transport(bucket.arn)]),
            # S3 rejects bucket policies while the public access block is being applied.
            opts=pulumi.ResourceOptions.merge(
                keep, pulumi.ResourceOptions(depends_on=[public_block, ownership])
            ),
        )
        for prefix in args.prefixes:
            # Zero-byte keys make the agreed layout visible in the console from day one.
            aws.s3.BucketObjectv2(
                f"{name}-{prefix.strip('/').replace('/', '-')}-prefix",
                bucket=bucket.id,
                key=prefix,
                content="",
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.bucket_name = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "arn": self.arn})
