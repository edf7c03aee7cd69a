"""cdk-nag results of a synthesized cloud assembly as per-stage JUnit reports and per-stage gates.

    python3 -m pipeline.nag_report junit   --assembly cdk.out --out reports/nag [--stage NAME]...
    python3 -m pipeline.nag_report gate    --assembly cdk.out --stage Consumer [--stage NAME]...
    python3 -m pipeline.nag_report summary --assembly cdk.out

Standard library only (code in ``pipeline/nag/``): a bare CodeBuild step runs it with ``python3`` 3.11+, without
the project installed. It reads, and never imports CDK:
  * the manifests (root and nested ``assembly-*``): each top-level stack is a group, and so is each nested assembly
    (a Stage), named by its last path segment (``Pipeline/Consumer`` -> ``Consumer``);
  * ``validation-report.json``: each plugin's ``violations`` and ``suppressedViolations``. Plugins are the cdk-nag
    packs (``AwsSolutions``, ``HIPAA.Security``, ``NIST.800.53.R5``, ``PCI.DSS.321``, ``Serverless``; rule ids
    ``<pack>-<rule>``) and CDK's ``CloudFormation Validate``;
  * ``aws:cdk:acknowledged-rules`` in each ``<stack>.metadata.json``: CDK records every acknowledgment there, at the
    construct it was made on, while cdk-nag leaves those with a plain id (``AwsSolutions-S1``) out of the report.
A finding belongs to the group whose construct path is the longest prefix of its own.

Why it cannot false-green: a group fails unless the report exists and is not older than ``manifest.json`` (so
validation ran on this very assembly), no plugin crashed, and no plugin - any pack, at any severity once the
plugin failed - has a violation in the group or one that no group owns. An unknown stage exits 2, and ``junit``
deletes old files first, so a renamed stage cannot pass on stale results. The report cannot show a pack that never
ran (a pack that finds nothing is left out, like an unregistered one): that cdk-nag is registered on the App is
proven by a test that synthesizes the app with a deliberately non-compliant resource and expects synth to fail.

Exit codes: 0 clean; 1 findings or unusable results; 2 unusable input (no assembly, unknown stage).
"""

import sys

from pipeline.nag.cli import main

if __name__ == "__main__":
    sys.exit(main())
