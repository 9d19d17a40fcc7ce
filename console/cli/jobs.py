"""`create job NAME --from=cronjob/X`: a CronJob's Job, now."""

from __future__ import annotations

import argparse

from console.cli.arguments import UsageError, client_for, namespace_of, split_target
from control.objects.kinds import CRONJOB, JOB


async def create_job(args: argparse.Namespace) -> int:
    from control.operations.jobs import create_job_from_cronjob

    rt, source = split_target(args.source, None) if "/" in args.source else (None, "")
    if rt is not CRONJOB:
        raise UsageError(f"--from: from must be of the form cronjob/NAME, not {args.source!r}")
    async with client_for(args) as client:
        await create_job_from_cronjob(client, source, namespace_of(args, CRONJOB), args.name)
    print(f"{JOB.singular_resource}/{args.name} created")
    return 0
