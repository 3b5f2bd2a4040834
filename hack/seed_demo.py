#!/usr/bin/env python3
"""The two AWS accounts of `make demo`, in Ferry's AWS emulator.

    seed_demo.py --endpoint URL seed   make both accounts, their roles and buckets; print the
                                       operator's credentials as `export ...` lines (stdout)
    seed_demo.py --endpoint URL list   what Account B's bucket holds, its policy Sids and
                                       Object Ownership, and what Ferry created in Account A

Account A (111111111111): role /platform/ferry-operator (the operator's identity) and the source
bucket ferry-demo-source with sample objects under media/. Account B (222222222222): role
ferry-bucket-admin (trusted by the operator's role; Ferry assumes it) and the destination bucket
ferry-demo-destination, with Object Ownership ObjectWriter and a bucket policy statement of its
own, which Ferry must keep. Run it with the emulator's venv: .cache/venv/bin/python.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

REGION = "us-east-1"
ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"
OPERATOR_ROLE_PATH = "/platform/"
OPERATOR_ROLE = "ferry-operator"
OPERATOR_ROLE_ARN = f"arn:aws:iam::{ACCOUNT_A}:role{OPERATOR_ROLE_PATH}{OPERATOR_ROLE}"
BUCKET_ADMIN_ROLE = "ferry-bucket-admin"
SOURCE_BUCKET = "ferry-demo-source"
DESTINATION_BUCKET = "ferry-demo-destination"
OWN_SID = "DenyBucketDeletion"

# Under media/: what the quickstart copies, except the *.tmp file (its exclude filter).
# Sizes in KiB; the bytes are random (seeded, so every run looks the same).
SAMPLE_OBJECTS = [
    ("media/photos/2024/beach-001.jpg", 96),
    ("media/photos/2024/beach-002.jpg", 88),
    ("media/photos/2024/sunset-over-pier.jpg", 120),
    ("media/photos/2024/family-dinner.heic", 64),
    ("media/photos/2023/hiking-trail.jpg", 104),
    ("media/photos/2023/first-snow.png", 150),
    ("media/thumbnails/beach-001-thumb.jpg", 8),
    ("media/thumbnails/sunset-over-pier-thumb.jpg", 6),
    ("media/videos/birthday-clip.mp4", 256),
    ("media/albums/summer-2024.json", 2),
    ("media/README.txt", 1),
    ("media/upload-in-progress.tmp", 40),
    # Outside media/: the source location's prefix leaves it out.
    ("reports/storage-2024-q4.csv", 12),
]


def say(text: str = "") -> None:
    """Human-readable output goes to stderr: stdout is for the shell to eval."""
    print(text, file=sys.stderr, flush=True)


class Emulator:
    def __init__(self, endpoint: str):
        self.endpoint = endpoint
        self.root = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}

    def client(self, service: str, creds: dict):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
            **creds,
        )

    def assume(self, role_arn: str, creds: dict | None = None, session: str = "ferry-demo") -> dict:
        out = self.client("sts", creds or self.root).assume_role(RoleArn=role_arn, RoleSessionName=session)
        c = out["Credentials"]
        return {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }

    def admin(self, account: str) -> dict:
        """Credentials of an administrator of `account` (the emulator makes accounts on AssumeRole)."""
        return self.assume(f"arn:aws:iam::{account}:role/bootstrap", session="ferry-demo-admin")


def policy(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def seed(emu: Emulator) -> None:
    # Account A: the operator's role and the source bucket.
    admin_a = emu.admin(ACCOUNT_A)
    iam_a = emu.client("iam", admin_a)
    iam_a.create_role(
        Path=OPERATOR_ROLE_PATH,
        RoleName=OPERATOR_ROLE,
        Description="Ferry operator (IRSA / Pod Identity role on a real cluster)",
        AssumeRolePolicyDocument=policy(
            [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_A}:root"}, "Action": "sts:AssumeRole"}]
        ),
    )
    # The operator's identity policy of the README ("The IAM policy of the operator's
    # identity"), with the demo's account, role names and buckets filled in.
    iam_a.put_role_policy(
        RoleName=OPERATOR_ROLE,
        PolicyName="ferry-operator",
        PolicyDocument=policy([
            {"Sid": "ManageTheDataSyncRole", "Effect": "Allow",
             "Action": ["iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
                        "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DeleteRole"],
             "Resource": f"arn:aws:iam::{ACCOUNT_A}:role/ferry-*"},
            {"Sid": "HandTheRoleToDataSync", "Effect": "Allow", "Action": "iam:PassRole",
             "Resource": f"arn:aws:iam::{ACCOUNT_A}:role/ferry-*",
             "Condition": {"StringEquals": {"iam:PassedToService": "datasync.amazonaws.com"}}},
            {"Sid": "DataSync", "Effect": "Allow", "Action": "datasync:*", "Resource": "*"},
            {"Sid": "CreateLocationsOnTheBuckets", "Effect": "Allow",
             "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": [f"arn:aws:s3:::{SOURCE_BUCKET}", f"arn:aws:s3:::{DESTINATION_BUCKET}"]},
            {"Sid": "ReadTheSourceEncryption", "Effect": "Allow", "Action": "s3:GetEncryptionConfiguration",
             "Resource": f"arn:aws:s3:::{SOURCE_BUCKET}"},
            {"Sid": "ResolveSourceKeyAliases", "Effect": "Allow", "Action": "kms:DescribeKey",
             "Resource": f"arn:aws:kms:*:{ACCOUNT_A}:key/*"},
            {"Sid": "AssumeTheRolesNamedInTransfers", "Effect": "Allow", "Action": "sts:AssumeRole",
             "Resource": [f"arn:aws:iam::{ACCOUNT_B}:role/{BUCKET_ADMIN_ROLE}"]},
        ]),
    )
    s3_a = emu.client("s3", admin_a)
    s3_a.create_bucket(Bucket=SOURCE_BUCKET)
    rng = random.Random(20240601)
    total = 0
    for key, kib in SAMPLE_OBJECTS:
        body = rng.randbytes(kib * 1024)
        total += len(body)
        s3_a.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=body)
    say(f"    Account A {ACCOUNT_A}: role {OPERATOR_ROLE_ARN}")
    say(f"      s3://{SOURCE_BUCKET}: {len(SAMPLE_OBJECTS)} objects, {total // 1024} KiB "
        f"({sum(k.startswith('media/') for k, _ in SAMPLE_OBJECTS)} under media/, one of them *.tmp)")

    # Account B: the role Ferry assumes and the destination bucket.
    admin_b = emu.admin(ACCOUNT_B)
    iam_b = emu.client("iam", admin_b)
    iam_b.create_role(
        RoleName=BUCKET_ADMIN_ROLE,
        Description="Assumed by Ferry to configure the destination bucket",
        AssumeRolePolicyDocument=policy(
            [{"Effect": "Allow", "Principal": {"AWS": OPERATOR_ROLE_ARN}, "Action": "sts:AssumeRole"}]
        ),
    )
    iam_b.put_role_policy(
        RoleName=BUCKET_ADMIN_ROLE,
        PolicyName="ferry-destination-bucket",
        PolicyDocument=policy([{
            "Effect": "Allow",
            "Action": [
                "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
                "s3:GetBucketOwnershipControls", "s3:PutBucketOwnershipControls",
                "s3:GetEncryptionConfiguration",
            ],
            "Resource": f"arn:aws:s3:::{DESTINATION_BUCKET}",
        }]),
    )
    s3_b = emu.client("s3", admin_b)
    s3_b.create_bucket(Bucket=DESTINATION_BUCKET)
    s3_b.put_bucket_ownership_controls(
        Bucket=DESTINATION_BUCKET,
        OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]},
    )
    s3_b.put_bucket_policy(
        Bucket=DESTINATION_BUCKET,
        Policy=policy([{
            "Sid": OWN_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteBucket",
            "Resource": f"arn:aws:s3:::{DESTINATION_BUCKET}",
        }]),
    )
    say(f"    Account B {ACCOUNT_B}: role arn:aws:iam::{ACCOUNT_B}:role/{BUCKET_ADMIN_ROLE}")
    say(f"      s3://{DESTINATION_BUCKET}: empty, Object Ownership ObjectWriter, bucket policy Sid {OWN_SID}")

    # The operator's credentials: a session of its role in Account A.
    operator = emu.assume(OPERATOR_ROLE_ARN, session="ferry-operator")
    for var, field in [
        ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
        ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
        ("AWS_SESSION_TOKEN", "aws_session_token"),
    ]:
        print(f"export {var}={shlex.quote(operator[field])}")


def human(size: int) -> str:
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} B"


def list_state(emu: Emulator) -> None:
    admin_b = emu.admin(ACCOUNT_B)
    s3_b = emu.client("s3", admin_b)
    objects = []
    for page in s3_b.get_paginator("list_objects_v2").paginate(Bucket=DESTINATION_BUCKET):
        objects.extend(page.get("Contents", []))
    print(f"Account B {ACCOUNT_B}, s3://{DESTINATION_BUCKET}:")
    width = max([len(o["Key"]) for o in objects] + [10])
    for o in objects:
        print(f"  {o['Key']:<{width}}  {human(o['Size']):>10}")
    print(f"  {len(objects)} objects, {human(sum(o['Size'] for o in objects))}" if objects else "  (no objects)")

    try:
        doc = json.loads(s3_b.get_bucket_policy(Bucket=DESTINATION_BUCKET)["Policy"])
        statements = doc.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        sids = [s.get("Sid", "(no Sid)") for s in statements]
        print(f"  bucket policy Sids: {', '.join(sids)}")
    except ClientError as e:
        if e.response["Error"]["Code"] != "NoSuchBucketPolicy":
            raise
        print("  bucket policy: none")
    try:
        rules = s3_b.get_bucket_ownership_controls(Bucket=DESTINATION_BUCKET)["OwnershipControls"]["Rules"]
        print(f"  Object Ownership: {', '.join(r['ObjectOwnership'] for r in rules)}")
    except ClientError as e:
        if e.response["Error"]["Code"] != "OwnershipControlsNotFoundError":
            raise
        print("  Object Ownership: not set")

    # What Ferry made in Account A: the DataSync role (tagged ferry.dev/managed-by=ferry),
    # the locations and the task.
    admin_a = emu.admin(ACCOUNT_A)
    iam_a = emu.client("iam", admin_a)
    ferry_roles = []
    for page in iam_a.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            tags = iam_a.list_role_tags(RoleName=role["RoleName"]).get("Tags", [])
            if any(t["Key"] == "ferry.dev/managed-by" and t["Value"] == "ferry" for t in tags):
                ferry_roles.append(role["RoleName"])
    datasync = emu.client("datasync", admin_a)
    tasks = datasync.list_tasks().get("Tasks", [])
    locations = datasync.list_locations().get("Locations", [])
    print(f"Account A {ACCOUNT_A}, made by Ferry:")
    print(f"  IAM roles: {', '.join(ferry_roles) or 'none'}")
    print(f"  DataSync tasks: {', '.join(t.get('Name') or t['TaskArn'] for t in tasks) or 'none'}")
    print(f"  DataSync locations: {', '.join(loc['LocationUri'] for loc in locations) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="the emulator's URL (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("command", choices=["seed", "list"])
    args = parser.parse_args()
    if not args.endpoint:
        parser.error("--endpoint or AWS_ENDPOINT_URL is required")
    # Only the emulator's own answers count: no profile, no credentials of the user's.
    for var in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"]:
        os.environ.pop(var, None)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    emu = Emulator(args.endpoint)
    if args.command == "seed":
        seed(emu)
    else:
        list_state(emu)
    return 0


if __name__ == "__main__":
    sys.exit(main())
