"""Entry point the Pulumi CLI runs (`pulumi preview --policy-pack infra_pulumi/policy_pack`); wiring only.

The CLI runs this directory as a script with the directory on sys.path, hence the plain sibling import.
Constructing the PolicyPack starts the analyzer's gRPC server and blocks, so nothing else may import this file.
"""

from policies import MANDATORY_POLICIES
from pulumi_policy import EnforcementLevel, PolicyPack

PolicyPack("waldinger-cost-guardrails", policies=MANDATORY_POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
