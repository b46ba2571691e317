"""The pack's cost guardrails: one pure check per rule on resource inputs, then the pulumi_policy wrappers.

Self-contained on purpose: the Pulumi CLI runs the pack in its own virtualenv, where the project is not installed.
Props are resource inputs as the engine hands them to policies: camelCase names from the azure-native schema, numbers
as floats. A value that is unknown during preview is skipped by the check that needs it, never reported as a
violation, so a preview never fails on something only the update can know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from pulumi_policy import (
    PolicyConfigSchema,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
    unknown_checking_proxy,
)

COMPUTE_SCALES_TO_ZERO = "compute-cluster-scales-to-zero"
MODEL_SERVING_SCALES_TO_ZERO = "model-serving-app-scales-to-zero"
REGISTRY_ADMIN_USER_DISABLED = "registry-admin-user-disabled"
COST_TAGS_PRESENT = "cost-tags-present"

COMPUTE_TYPE = "azure-native:machinelearningservices:Compute"
CONTAINER_APP_TYPE = "azure-native:app:ContainerApp"
REGISTRY_TYPE = "azure-native:containerregistry:Registry"

DEFAULT_MAX_NODES = 8
MAX_IDLE_BEFORE_SCALE_DOWN = timedelta(minutes=30)
MODEL_SERVING_TAG = ("workload", "model-serving")
REQUIRED_TAGS = ("team", "project", "environment")
TAGGABLE_TYPES = frozenset(
    {
        "azure-native:resources:ResourceGroup",
        "azure-native:machinelearningservices:Workspace",
        COMPUTE_TYPE,
        REGISTRY_TYPE,
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Secret",
        "azure-native:applicationinsights:Component",
        "azure-native:operationalinsights:Workspace",
        "azure-native:app:ManagedEnvironment",
        CONTAINER_APP_TYPE,
        "azure-native:app:Job",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:dbforpostgresql:Server",
    }
)

_MISSING = object()
_UNKNOWN = object()
# Props that did not go through the engine's proxy still carry the raw preview sentinels.
_UNKNOWN_SENTINELS = frozenset(
    {UNKNOWN_ARRAY_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_OBJECT_VALUE, UNKNOWN_STRING_VALUE}
)
_DURATION = re.compile(r"P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?")


def _lookup(props: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, `_MISSING` when absent, `_UNKNOWN` when preview cannot know it yet."""
    node: Any = props
    for key in path.split("."):
        if isinstance(node, str) and node in _UNKNOWN_SENTINELS:
            return _UNKNOWN
        if not isinstance(node, Mapping):
            return _MISSING
        try:
            node = node[key]
        except KeyError:
            return _MISSING
        except UnknownValueError:  # the engine's proxy raises instead of returning the sentinel
            return _UNKNOWN
    if node is None:
        return _MISSING
    return _UNKNOWN if isinstance(node, str) and node in _UNKNOWN_SENTINELS else node


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: float) -> str:
    # The engine hands every number over as a float; 2.0 reads better as 2.
    return str(int(value)) if float(value).is_integer() else str(value)


def _is_blank(value: Any) -> bool:
    return value is _MISSING or (isinstance(value, str) and not value.strip())


def _parse_duration(text: str) -> timedelta | None:
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    d, h, m, s = (float(match.group(g) or 0) for g in "dhms")
    return timedelta(days=d, hours=h, minutes=m, seconds=s)


def _set_to_zero(value: Any, path: str, why: str) -> list[str]:
    if value is _MISSING:
        return [f"{path} is not set; set it to 0 {why}"]
    if _is_number(value) and value != 0:
        return [f"{path} is {_show(value)}; set it to 0 {why}"]
    return []


def check_compute_scales_to_zero(
    resource_type: str, props: Mapping[str, Any], *, max_nodes: int = DEFAULT_MAX_NODES
) -> list[str]:
    """An AmlCompute cluster releases every node when idle, soon after the last job, and stays under a node ceiling."""
    if resource_type != COMPUTE_TYPE or _lookup(props, "properties.computeType") != "AmlCompute":
        return []
    base = "properties.properties.scaleSettings"
    why = "so the cluster releases every node when idle"
    messages = _set_to_zero(_lookup(props, f"{base}.minNodeCount"), f"{base}.minNodeCount", why)
    top = _lookup(props, f"{base}.maxNodeCount")
    if top is _MISSING:
        messages.append(f"{base}.maxNodeCount is not set; set a ceiling of at most {max_nodes} nodes")
    elif _is_number(top) and (top <= 0 or not float(top).is_integer()):
        messages.append(f"{base}.maxNodeCount is {_show(top)}; set it to a whole number from 1 to {max_nodes}")
    elif _is_number(top) and top > max_nodes:
        messages.append(
            f"{base}.maxNodeCount is {_show(top)}; lower it to at most {max_nodes} (the policy's maxNodes config)"
        )
    idle_path, limit = f"{base}.nodeIdleTimeBeforeScaleDown", f"PT{MAX_IDLE_BEFORE_SCALE_DOWN // timedelta(minutes=1)}M"
    idle = _lookup(props, idle_path)
    parsed = _parse_duration(idle) if isinstance(idle, str) else None
    if idle is _MISSING:
        messages.append(f"{idle_path} is not set; set an ISO-8601 duration such as PT10M (at most {limit})")
    elif isinstance(idle, str) and parsed is None:
        messages.append(f"{idle_path} is {idle!r}, not an ISO-8601 duration; write it like PT10M (at most {limit})")
    elif parsed is not None and parsed > MAX_IDLE_BEFORE_SCALE_DOWN:
        messages.append(f"{idle_path} is {idle}; shorten it to at most {limit} so idle nodes stop billing soon")
    return messages


def check_model_serving_scales_to_zero(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A Container App tagged workload=model-serving scales to zero, with a replica ceiling and a rule to wake it."""
    tag, value = MODEL_SERVING_TAG
    if resource_type != CONTAINER_APP_TYPE or _lookup(props, f"tags.{tag}") != value:
        return []
    why = "so the app stops billing when no requests arrive"
    messages = _set_to_zero(_lookup(props, "template.scale.minReplicas"), "template.scale.minReplicas", why)
    if _lookup(props, "template.scale.maxReplicas") is _MISSING:
        messages.append(
            "template.scale.maxReplicas is not set; set an explicit ceiling so a traffic spike cannot run the bill"
            " past a reviewed number"
        )
    rules = _lookup(props, "template.scale.rules")
    if rules is _MISSING or (isinstance(rules, Sequence) and not isinstance(rules, str) and len(rules) == 0):
        messages.append(
            "template.scale.rules is empty; add an http scale rule so requests wake the app from zero replicas"
            " (without a rule, an app without ingress has nothing that wakes it)"
        )
    return messages


def check_registry_admin_user_disabled(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The registry's shared admin password must stay off; missing means off, Azure's default."""
    if resource_type != REGISTRY_TYPE or _lookup(props, "adminUserEnabled") is not True:
        return []
    return ["adminUserEnabled is true; set it to false and pull images with a managed identity granted AcrPull"]


def check_cost_tags_present(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Every taggable resource carries the tags the cost report groups by."""
    tags = _lookup(props, "tags")
    if tags is _MISSING and resource_type in TAGGABLE_TYPES:
        tags = {}
    if not isinstance(tags, Mapping):  # not taggable, or not known until the update
        return []
    missing = [key for key in REQUIRED_TAGS if _is_blank(_lookup(tags, key))]
    if not missing:
        return []
    return [f"tags lacks {', '.join(missing)}; add them (non-empty) so the cost report can attribute this resource"]


def _validate_with(check: Callable[[str, Mapping[str, Any]], list[str]]) -> Callable[..., None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def _validate_compute(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    max_nodes = int(args.get_config().get("maxNodes", DEFAULT_MAX_NODES))
    for message in check_compute_scales_to_zero(args.resource_type, args.props, max_nodes=max_nodes):
        report_violation(message, None)


# Enforcement is left to the pack, which makes every policy mandatory.
MANDATORY_POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name=COMPUTE_SCALES_TO_ZERO,
        description="Azure ML compute clusters scale to zero nodes when idle and stay under a node ceiling.",
        validate=_validate_compute,
        config_schema=PolicyConfigSchema(properties={"maxNodes": {"type": "integer", "default": DEFAULT_MAX_NODES}}),
    ),
    ResourceValidationPolicy(
        name=MODEL_SERVING_SCALES_TO_ZERO,
        description="Container Apps tagged workload=model-serving scale to zero replicas, with a ceiling and a rule.",
        validate=_validate_with(check_model_serving_scales_to_zero),
    ),
    ResourceValidationPolicy(
        name=REGISTRY_ADMIN_USER_DISABLED,
        description="Container registries keep the shared admin user disabled.",
        validate=_validate_with(check_registry_admin_user_disabled),
    ),
    ResourceValidationPolicy(
        name=COST_TAGS_PRESENT,
        description=f"Taggable resources carry the cost tags {', '.join(REQUIRED_TAGS)}.",
        validate=_validate_with(check_cost_tags_present),
    ),
]


def violations(
    resource_type: str,
    props: Mapping[str, Any],
    config: Mapping[str, Mapping[str, Any]] | None = None,
    name: str = "resource",
) -> dict[str, list[str]]:
    """Run every policy over one resource as the engine would; policy name -> messages, only policies that fired.

    `config` is per policy name, like `pulumi preview --policy-pack-config`. Props go through pulumi_policy's own
    unknown-checking proxy, so preview sentinels behave as they do under the engine.
    """
    opts = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(create_seconds=0, update_seconds=0, delete_seconds=0),
        additional_secret_outputs=[],
    )
    found: dict[str, list[str]] = {}
    for policy in MANDATORY_POLICIES:
        messages: list[str] = []
        args = ResourceValidationArgs(
            resource_type=resource_type,
            props=unknown_checking_proxy(dict(props)),
            urn=f"urn:pulumi:policy::waldinger::{resource_type}::{name}",
            name=name,
            opts=opts,
            provider=None,
            config=(config or {}).get(policy.name),
        )
        policy.validate(args, lambda message, urn=None, sink=messages: sink.append(message))
        if messages:
            found[policy.name] = messages
    return found
