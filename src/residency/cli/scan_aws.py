"""`scan --aws`: options and the factory for the AWS collector."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from residency.collectors.interface import Collector
from residency.errors import CollectorError
from residency.policy.pack import PolicyPack

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ROLE_NAME = "ResidencyReadOnly"  # keep in step with residency.collectors.aws


def aws_options(func: F) -> F:
    options = [
        click.option("--aws", "aws", is_flag=True,
                     help="Scan AWS: the caller's organization (or one account), every "
                     "enabled region."),
        click.option("--aws-profile", "aws_profile", multiple=True, metavar="NAME",
                     help="Scan the account behind this named profile (repeatable), each in "
                     "its own partition (GovCloud, China), instead of the organization."),
        click.option("--aws-account", "aws_account", multiple=True, metavar="ID",
                     help="Scan this account through --aws-role-name (repeatable) instead of "
                     "listing the organization."),
        click.option("--aws-role-name", default=DEFAULT_ROLE_NAME, show_default=True,
                     metavar="ROLE", help="Read-only role assumed in each member account "
                     "(`residency policies iam aws`)."),
        click.option("--aws-organization/--aws-single-account", "aws_organization",
                     default=True, show_default=True,
                     help="Enter every member account listed by AWS Organizations, or only "
                     "the caller's."),
        click.option("--aws-region", "aws_region", multiple=True, metavar="REGION",
                     help="Limit the scan to this region (repeatable; default: every enabled "
                     "region)."),
        click.option("--aws-endpoint", "aws_endpoint", metavar="URL", default=None,
                     help="AWS endpoint of a local test peer such as moto "
                     "($AWS_ENDPOINT_URL works too)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def build_aws(
    pack: PolicyPack,
    *,
    aws: bool = False,
    aws_profile: tuple[str, ...] = (),
    aws_account: tuple[str, ...] = (),
    aws_role_name: str = DEFAULT_ROLE_NAME,
    aws_organization: bool = True,
    aws_region: tuple[str, ...] = (),
    aws_endpoint: str | None = None,
    **_: Any,
) -> Collector | None:
    """None unless --aws was given; --aws-profile/--aws-account imply it."""
    if not (aws or aws_profile or aws_account):
        return None
    try:
        import boto3

        from residency.collectors.aws import AwsCollector
    except ImportError:
        raise CollectorError("--aws needs boto3: pip install 'residency[aws]'") from None
    endpoint = aws_endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
    return AwsCollector(
        None if aws_profile else boto3.Session(),
        organization=aws_organization,
        accounts=aws_account,
        profiles=aws_profile,
        role_name=aws_role_name,
        regions=aws_region,
        endpoint_url=endpoint,
        catalogue=pack.catalogue,  # the gate's: which listed and tagged types are stores
    )
