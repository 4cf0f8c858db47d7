"""The chart's values and their JSON Schema: every value described, both values files valid, bad
values refused with a message, docs/helm-values.md generated from the schema."""

from __future__ import annotations

import importlib.util
import re

import jsonschema
import pytest

from tests.kubernetes.chart import (BASE, CHART, EVERYTHING, RELEASE, ROOT, Obj, helm, load,
                                    schema)


def test_values_pass_the_schema() -> None:
    validator = jsonschema.Draft7Validator(schema())
    jsonschema.Draft7Validator.check_schema(schema())
    defaults = load(CHART / "values.yaml")
    # an override file is checked as helm checks it: merged over the chart's defaults
    for name, values in (("values.yaml", defaults), ("values-everything.yaml", load(EVERYTHING)),
                         ("values-base.yaml over values.yaml", merged(defaults, load(BASE)))):
        errors = [e.message for e in validator.iter_errors(values)]
        assert not errors, f"{name}: {errors}"


def merged(base: Obj, override: Obj) -> Obj:
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


@pytest.mark.parametrize("setting, expected", [
    ("build.engine=kaniko", "build.engine"),
    ("replicas=0", "replicas"),
    ("registry.imagePrefix=no-slash", "imagePrefix"),
    ("networkPolicy.blockedCidrs[0]=everywhere", "blockedCidrs"),
    ("typo=1", "typo"),
])
def test_bad_values_fail_with_a_message(setting: str, expected: str) -> None:
    """helm refuses them from the schema (and the jsonschema library agrees)."""
    done = helm("template", RELEASE, str(CHART), "-f", str(BASE), "--set", setting)
    assert done.returncode != 0
    assert "schema" in done.stderr and expected in done.stderr, done.stderr
    key, value = setting.split("=", 1)
    values = load(CHART / "values.yaml")
    node, parts = values, re.split(r"\.|\[(\d+)\]", key)
    parts = [p for p in parts if p]
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = int(value) if value.isdigit() else value
    assert list(jsonschema.Draft7Validator(schema()).iter_errors(values))


@pytest.mark.parametrize("args, message", [
    (["--set", "hub.url="], "hub.url"),
    (["--set", "settings.hub_api_token=x"], "settings.hub_api_token is set by the chart"),
    (["--set", "redis.enabled=false"], "replicas > 1 needs a shared state store"),
    (["--set", "ingress.enabled=true"], "ingress.enabled needs ingress.host"),
])
def test_inconsistent_values_fail_with_a_message(args: list[str], message: str) -> None:
    done = helm("template", RELEASE, str(CHART), "-f", str(BASE), *args)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def walk(node: Obj, path: str = "") -> list[tuple[str, Obj]]:
    out = []
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        out.append((here, child))
        out.extend(walk(child, here))
    return out


def test_every_value_is_described_and_closed() -> None:
    props = walk(schema())
    assert len(props) > 60
    undescribed = [p for p, node in props if len(node.get("description", "")) < 8]
    assert not undescribed
    # objects whose keys are the chart's own are closed; free-form maps (labels, Kubernetes objects,
    # settings) say what they hold in their description instead
    open_objects = {p for p, node in props if node.get("type") == "object" and node.get("properties")
                    and node.get("additionalProperties") is not False}
    assert not open_objects
    assert schema()["additionalProperties"] is False


def leaves(node: Obj, path: str = "") -> set[str]:
    out: set[str] = set()
    for name, child in node.get("properties", {}).items():
        here = f"{path}.{name}" if path else name
        out |= leaves(child, here) if child.get("properties") else {here}
    return out


def present(values: Obj, path: str) -> bool:
    for key in path.split("."):
        if not isinstance(values, dict) or key not in values:
            return False
        values = values[key]
    return True


def test_values_everything_sets_every_value() -> None:
    values = load(EVERYTHING)
    missing = sorted(p for p in leaves(schema()) if not present(values, p))
    assert not missing


def test_values_doc_is_generated_from_the_schema() -> None:
    spec = importlib.util.spec_from_file_location("helm_values_doc", ROOT / "scripts/helm_values_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = module.generate(CHART)
    assert (ROOT / "docs/helm-values.md").read_text() == generated, \
        "docs/helm-values.md is stale: run python scripts/helm_values_doc.py"
    for path, _ in walk(schema()):
        assert f"`{path}`" in generated
