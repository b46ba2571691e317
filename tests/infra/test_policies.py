"""The policy pack's cost guardrails on plain resource inputs (camelCase, as the engine hands them to policies).

The pure checks are tested directly; `violations(...)` runs them through the real pulumi_policy classes. No test
constructs a PolicyPack: its constructor starts the analyzer's gRPC server and blocks.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy
from pulumi_policy.proxy import (
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from infra_pulumi.policy_pack.policies import (
    COMPUTE_SCALES_TO_ZERO,
    COMPUTE_TYPE,
    CONTAINER_APP_TYPE,
    COST_TAGS_PRESENT,
    MANDATORY_POLICIES,
    MODEL_SERVING_SCALES_TO_ZERO,
    REGISTRY_ADMIN_USER_DISABLED,
    REGISTRY_TYPE,
    REQUIRED_TAGS,
    TAGGABLE_TYPES,
    check_compute_scales_to_zero,
    check_cost_tags_present,
    check_model_serving_scales_to_zero,
    check_registry_admin_user_disabled,
    violations,
)

PACK_DIR = Path(__file__).resolve().parents[2] / "infra_pulumi" / "policy_pack"
TAGS = {"team": "ml-platform", "project": "waldinger", "environment": "prod"}
SCALE = "properties.properties.scaleSettings"


def compute(scale_settings: dict[str, Any], compute_type: str = "AmlCompute") -> dict[str, Any]:
    properties = {"scaleSettings": scale_settings, "vmSize": "Standard_NC24ads_A100_v4"}
    return {"properties": {"computeType": compute_type, "properties": properties}, "tags": TAGS}


def serving_app(scale: dict[str, Any], workload: str | None = "model-serving") -> dict[str, Any]:
    tags = {**TAGS, "workload": workload} if workload else dict(TAGS)
    return {"tags": tags, "template": {"scale": scale, "containers": [{"name": "llm", "image": "acr.io/llm:1"}]}}


GOOD_SCALE = {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT10M"}
GOOD_APP_SCALE = {"minReplicas": 0, "maxReplicas": 2, "rules": [{"name": "http", "http": {"metadata": {}}}]}


# --- compute-cluster-scales-to-zero -----------------------------------------------------------------------------


def test_compute_that_scales_to_zero_passes() -> None:
    assert check_compute_scales_to_zero(COMPUTE_TYPE, compute(GOOD_SCALE)) == []
    # The engine hands numbers over as floats.
    assert check_compute_scales_to_zero(COMPUTE_TYPE, compute({**GOOD_SCALE, "minNodeCount": 0.0})) == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"minNodeCount": 2}, f"{SCALE}.minNodeCount is 2; set it to 0 so the cluster releases every node when idle"),
        ({"minNodeCount": 1.0}, f"{SCALE}.minNodeCount is 1; set it to 0"),
        ({"minNodeCount": None}, f"{SCALE}.minNodeCount is not set; set it to 0"),
        ({"maxNodeCount": None}, f"{SCALE}.maxNodeCount is not set; set a ceiling of at most 8 nodes"),
        ({"maxNodeCount": 0}, f"{SCALE}.maxNodeCount is 0; set it to a whole number from 1 to 8"),
        ({"maxNodeCount": 2.5}, f"{SCALE}.maxNodeCount is 2.5; set it to a whole number"),
        ({"maxNodeCount": 9}, f"{SCALE}.maxNodeCount is 9; lower it to at most 8"),
        ({"nodeIdleTimeBeforeScaleDown": None}, f"{SCALE}.nodeIdleTimeBeforeScaleDown is not set"),
        ({"nodeIdleTimeBeforeScaleDown": "PT1H"}, f"{SCALE}.nodeIdleTimeBeforeScaleDown is PT1H; shorten it"),
        ({"nodeIdleTimeBeforeScaleDown": "PT30M1S"}, "shorten it to at most PT30M"),
        ({"nodeIdleTimeBeforeScaleDown": "P1D"}, "shorten it to at most PT30M"),
        ({"nodeIdleTimeBeforeScaleDown": "10 minutes"}, "'10 minutes', not an ISO-8601 duration"),
        ({"nodeIdleTimeBeforeScaleDown": "PT"}, "'PT', not an ISO-8601 duration"),
    ],
)
def test_compute_violation_names_the_property_and_the_fix(override: dict[str, Any], expected: str) -> None:
    scale = {k: v for k, v in {**GOOD_SCALE, **override}.items() if v is not None}
    messages = check_compute_scales_to_zero(COMPUTE_TYPE, compute(scale))
    assert len(messages) == 1
    assert expected in messages[0]


@pytest.mark.parametrize("idle", ["PT30M", "PT1800S", "PT29M59S", "PT120S", "PT0S"])
def test_idle_time_up_to_thirty_minutes_passes(idle: str) -> None:
    assert (
        check_compute_scales_to_zero(COMPUTE_TYPE, compute({**GOOD_SCALE, "nodeIdleTimeBeforeScaleDown": idle})) == []
    )


def test_compute_without_scale_settings_reports_each_missing_field() -> None:
    messages = check_compute_scales_to_zero(COMPUTE_TYPE, compute({}))
    assert [m.split(" is ")[0] for m in messages] == [
        f"{SCALE}.minNodeCount",
        f"{SCALE}.maxNodeCount",
        f"{SCALE}.nodeIdleTimeBeforeScaleDown",
    ]


def test_max_nodes_bound_comes_from_the_keyword() -> None:
    twelve = compute({**GOOD_SCALE, "maxNodeCount": 12})
    assert check_compute_scales_to_zero(COMPUTE_TYPE, twelve, max_nodes=16) == []
    assert check_compute_scales_to_zero(COMPUTE_TYPE, twelve, max_nodes=10) == [
        f"{SCALE}.maxNodeCount is 12; lower it to at most 10 (the policy's maxNodes config)"
    ]


@pytest.mark.parametrize("vm_size", ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4", "Standard_D4s_v3"])
def test_every_aml_cluster_must_scale_to_zero_whatever_its_name_or_vm_size(vm_size: str) -> None:
    """The rule keys on the compute type alone, so the GPU training cluster is held to it like the batch one."""
    training = compute({**GOOD_SCALE, "minNodeCount": 1, "maxNodeCount": 1})
    training["computeName"] = "waldinger-training"
    training["properties"]["properties"]["vmSize"] = vm_size
    assert violations(COMPUTE_TYPE, training, name="waldinger-prod-training-cluster") == {
        COMPUTE_SCALES_TO_ZERO: [f"{SCALE}.minNodeCount is 1; set it to 0 so the cluster releases every node when idle"]
    }
    training["properties"]["properties"]["scaleSettings"]["minNodeCount"] = 0
    assert violations(COMPUTE_TYPE, training, name="waldinger-prod-training-cluster") == {}


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (COMPUTE_TYPE, compute({"minNodeCount": 3}, compute_type="ComputeInstance")),
        (COMPUTE_TYPE, compute({"minNodeCount": 3}, compute_type="Kubernetes")),
        ("azure-native:machinelearningservices:Workspace", compute({"minNodeCount": 3})),
    ],
)
def test_compute_rule_does_not_apply_outside_aml_clusters(resource_type: str, props: dict[str, Any]) -> None:
    assert check_compute_scales_to_zero(resource_type, props) == []


def test_compute_values_unknown_during_preview_are_skipped() -> None:
    scale = {
        "minNodeCount": UNKNOWN_NUMBER_VALUE,
        "maxNodeCount": UNKNOWN_NUMBER_VALUE,
        "nodeIdleTimeBeforeScaleDown": 7,
    }
    assert check_compute_scales_to_zero(COMPUTE_TYPE, compute(scale)) == []
    unknown_type = {"properties": {"computeType": UNKNOWN_OBJECT_VALUE}, "tags": TAGS}
    assert check_compute_scales_to_zero(COMPUTE_TYPE, unknown_type) == []


# --- model-serving-app-scales-to-zero ---------------------------------------------------------------------------


def test_model_serving_app_that_scales_to_zero_passes() -> None:
    assert check_model_serving_scales_to_zero(CONTAINER_APP_TYPE, serving_app(GOOD_APP_SCALE)) == []


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"minReplicas": 1}, "template.scale.minReplicas is 1; set it to 0 so the app stops billing"),
        ({"minReplicas": None}, "template.scale.minReplicas is not set; set it to 0"),
        ({"maxReplicas": None}, "template.scale.maxReplicas is not set; set an explicit ceiling"),
        ({"rules": []}, "template.scale.rules is empty; add an http scale rule so requests wake the app from zero"),
        ({"rules": None}, "template.scale.rules is empty; add an http scale rule"),
    ],
)
def test_model_serving_violation_names_the_property_and_the_fix(override: dict[str, Any], expected: str) -> None:
    scale = {k: v for k, v in {**GOOD_APP_SCALE, **override}.items() if v is not None}
    messages = check_model_serving_scales_to_zero(CONTAINER_APP_TYPE, serving_app(scale))
    assert len(messages) == 1
    assert messages[0].startswith(expected)


def test_model_serving_app_without_scale_block_reports_all_three() -> None:
    props = serving_app({})
    del props["template"]["scale"]
    assert len(check_model_serving_scales_to_zero(CONTAINER_APP_TYPE, props)) == 3


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (CONTAINER_APP_TYPE, serving_app({"minReplicas": 3}, workload=None)),
        (CONTAINER_APP_TYPE, serving_app({"minReplicas": 3}, workload="dagster")),
        (CONTAINER_APP_TYPE, {"template": {"scale": {"minReplicas": 3}}}),
        ("azure-native:app:Job", serving_app({"minReplicas": 3})),
    ],
)
def test_model_serving_rule_applies_only_to_tagged_container_apps(resource_type: str, props: dict[str, Any]) -> None:
    assert check_model_serving_scales_to_zero(resource_type, props) == []


# --- registry-admin-user-disabled -------------------------------------------------------------------------------


@pytest.mark.parametrize("props", [{"adminUserEnabled": False}, {}, {"adminUserEnabled": UNKNOWN_BOOLEAN_VALUE}])
def test_registry_without_admin_user_passes(props: dict[str, Any]) -> None:
    assert check_registry_admin_user_disabled(REGISTRY_TYPE, {**props, "tags": TAGS}) == []


def test_registry_with_admin_user_fails() -> None:
    assert check_registry_admin_user_disabled(REGISTRY_TYPE, {"adminUserEnabled": True}) == [
        "adminUserEnabled is true; set it to false and pull images with a managed identity granted AcrPull"
    ]
    assert check_registry_admin_user_disabled("azure-native:storage:StorageAccount", {"adminUserEnabled": True}) == []


# --- cost-tags-present ------------------------------------------------------------------------------------------


def test_required_and_taggable_sets_cover_the_stack() -> None:
    assert REQUIRED_TAGS == ("team", "project", "environment")
    assert {
        "azure-native:resources:ResourceGroup",
        "azure-native:machinelearningservices:Workspace",
        "azure-native:machinelearningservices:Compute",
        "azure-native:containerregistry:Registry",
        "azure-native:storage:StorageAccount",
        "azure-native:keyvault:Vault",
        "azure-native:keyvault:Secret",
        "azure-native:applicationinsights:Component",
        "azure-native:operationalinsights:Workspace",
        "azure-native:app:ManagedEnvironment",
        "azure-native:app:ContainerApp",
        "azure-native:app:Job",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:dbforpostgresql:Server",
    } <= TAGGABLE_TYPES


@pytest.mark.parametrize("resource_type", sorted(TAGGABLE_TYPES))
def test_every_taggable_type_needs_the_cost_tags(resource_type: str) -> None:
    assert check_cost_tags_present(resource_type, {"tags": TAGS}) == []
    assert check_cost_tags_present(resource_type, {}) == [
        "tags lacks team, project, environment; add them (non-empty) so the cost report can attribute this resource"
    ]


@pytest.mark.parametrize(
    ("tags", "missing"),
    [
        ({}, "team, project, environment"),
        ({"team": "ml-platform", "project": "waldinger"}, "environment"),
        ({**TAGS, "project": ""}, "project"),
        ({**TAGS, "team": "  "}, "team"),
        ({"environment": "prod"}, "team, project"),
    ],
)
def test_missing_or_blank_cost_tags_are_listed(tags: dict[str, str], missing: str) -> None:
    messages = check_cost_tags_present("azure-native:keyvault:Vault", {"tags": tags})
    assert messages == [f"tags lacks {missing}; add them (non-empty) so the cost report can attribute this resource"]


def test_unlisted_type_is_taggable_once_it_has_tags() -> None:
    unlisted = "azure-native:network:VirtualNetwork"
    assert unlisted not in TAGGABLE_TYPES
    assert check_cost_tags_present(unlisted, {"addressSpace": {}}) == []
    assert check_cost_tags_present(unlisted, {"tags": {"team": "ml-platform"}}) == [
        "tags lacks project, environment; add them (non-empty) so the cost report can attribute this resource"
    ]
    assert check_cost_tags_present("pulumi:providers:azure-native", {"location": "westeurope"}) == []


def test_tags_unknown_during_preview_are_skipped() -> None:
    assert check_cost_tags_present("azure-native:keyvault:Vault", {"tags": UNKNOWN_OBJECT_VALUE}) == []
    unknown_value = {**TAGS, "team": UNKNOWN_STRING_VALUE}
    assert check_cost_tags_present("azure-native:keyvault:Vault", {"tags": unknown_value}) == []


# --- the pack, through the real pulumi_policy classes -----------------------------------------------------------


def test_policy_names_are_unique_and_mandatory_by_the_pack() -> None:
    names = [policy.name for policy in MANDATORY_POLICIES]
    assert names == [
        COMPUTE_SCALES_TO_ZERO,
        MODEL_SERVING_SCALES_TO_ZERO,
        REGISTRY_ADMIN_USER_DISABLED,
        COST_TAGS_PRESENT,
    ]
    assert len(set(names)) == len(names)
    for policy in MANDATORY_POLICIES:
        assert isinstance(policy, ResourceValidationPolicy)
        assert policy.enforcement_level in (None, EnforcementLevel.MANDATORY)
        assert policy.has_validation()


def test_compute_policy_declares_the_max_nodes_config() -> None:
    schema = MANDATORY_POLICIES[0].config_schema
    assert schema is not None
    assert schema.properties == {"maxNodes": {"type": "integer", "default": 8}}


def test_violations_are_keyed_by_policy_name() -> None:
    props = compute({"minNodeCount": 1, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT10M"})
    props["tags"] = {"team": "ml-platform"}
    assert violations(COMPUTE_TYPE, props) == {
        COMPUTE_SCALES_TO_ZERO: [
            f"{SCALE}.minNodeCount is 1; set it to 0 so the cluster releases every node when idle"
        ],
        COST_TAGS_PRESENT: [
            "tags lacks project, environment; add them (non-empty) so the cost report can attribute this resource"
        ],
    }
    assert violations(COMPUTE_TYPE, compute(GOOD_SCALE)) == {}
    assert violations(REGISTRY_TYPE, {"adminUserEnabled": True, "tags": TAGS}) == {
        REGISTRY_ADMIN_USER_DISABLED: [
            "adminUserEnabled is true; set it to false and pull images with a managed identity granted AcrPull"
        ]
    }
    assert set(violations(CONTAINER_APP_TYPE, serving_app({"minReplicas": 1}))) == {MODEL_SERVING_SCALES_TO_ZERO}


def test_violations_reads_the_max_nodes_config_per_policy() -> None:
    twelve = compute({**GOOD_SCALE, "maxNodeCount": 12.0})
    assert set(violations(COMPUTE_TYPE, twelve)) == {COMPUTE_SCALES_TO_ZERO}
    assert violations(COMPUTE_TYPE, twelve, config={COMPUTE_SCALES_TO_ZERO: {"maxNodes": 16}}) == {}
    assert violations(COMPUTE_TYPE, twelve, config={COST_TAGS_PRESENT: {"maxNodes": 16}}) != {}


def test_violations_skip_values_the_engine_proxy_marks_unknown() -> None:
    # Through the real proxy an unknown raises UnknownValueError on access; the checks skip it instead of failing.
    scale = {**GOOD_SCALE, "minNodeCount": UNKNOWN_NUMBER_VALUE}
    assert violations(COMPUTE_TYPE, {**compute(scale), "tags": UNKNOWN_OBJECT_VALUE}) == {}
    assert violations(REGISTRY_TYPE, {"adminUserEnabled": UNKNOWN_BOOLEAN_VALUE, "tags": TAGS}) == {}


# --- the pack's files -------------------------------------------------------------------------------------------


def test_main_only_wires_the_mandatory_pack() -> None:
    source = (PACK_DIR / "__main__.py").read_text()
    compile(source, str(PACK_DIR / "__main__.py"), "exec")
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    assert [ast.unparse(call.func) for call in calls] == ["PolicyPack"]
    assert "from policies import MANDATORY_POLICIES" in source
    assert "enforcement_level=EnforcementLevel.MANDATORY" in source
    assert '"waldinger-cost-guardrails"' in source


def test_pack_metadata_and_requirements() -> None:
    manifest = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["version"] == "0.1.0"
    assert manifest["description"]
    requirements = (PACK_DIR / "requirements.txt").read_text().split()
    assert "pulumi-policy==1.21.0" in requirements


def test_policies_module_imports_nothing_from_the_project() -> None:
    tree = ast.parse((PACK_DIR / "policies.py").read_text())
    imported = {
        (node.module or "").split(".")[0] if isinstance(node, ast.ImportFrom) else alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "re", "collections", "datetime", "typing", "pulumi_policy"}
