"""Manifest edits: only the assigned values change; comments, quoting and odd indentation stay."""

from __future__ import annotations

import difflib

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_bot.deploy import yamledit
from tests.helpers.gitops import MANIFEST


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def test_replacing_a_value_changes_that_line_only() -> None:
    after = yamledit.edit(MANIFEST, {"spec.predictor.model.storageUri": "models:/iris-classifier/3"})
    assert changed_lines(MANIFEST, after) == [
        "-           storageUri: 'models:/iris-classifier/1'    # replaced on deploy",
        "+           storageUri: 'models:/iris-classifier/3'    # replaced on deploy",
    ]


def test_a_new_key_is_one_added_line_under_its_parent() -> None:
    after = yamledit.edit(MANIFEST, {"spec.predictor.canaryTrafficPercent": "10"})
    assert changed_lines(MANIFEST, after) == ["+       canaryTrafficPercent: 10"]
    assert yaml.safe_load(after)["spec"]["predictor"]["canaryTrafficPercent"] == 10


def test_new_nested_keys_and_special_paths() -> None:
    after = yamledit.edit(MANIFEST, {
        'metadata.annotations["serving.kserve.io/deploymentMode"]': "RawDeployment",
        "spec.predictor.model.args[0]": "--workers=4",
        "metadata.labels.model-version": "{model_version}",
    })
    doc = yaml.safe_load(after)
    assert doc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "RawDeployment"
    assert doc["spec"]["predictor"]["model"]["args"] == ["--workers=4"]
    assert doc["metadata"]["labels"] == {"model-version": "{model_version}"}  # edit() fills nothing itself
    assert '    serving.kserve.io/deploymentMode: "RawDeployment"' in after  # double quotes kept
    assert '          -   "--workers=4"' in after
    assert after.count("#") == MANIFEST.count("#")


def test_types_follow_the_replaced_value() -> None:
    text = "replicas: 1\nenabled: true\nlabel: '3'\nname: plain\n"
    after = yamledit.edit(text, {"replicas": "2", "enabled": "false", "label": "4", "name": "yes"})
    assert yaml.safe_load(after) == {"replicas": 2, "enabled": False, "label": "4", "name": "yes"}
    assert "name: 'yes'" in after  # plain `yes` would read back as a boolean in YAML 1.1


def test_holding_the_values_already_returns_the_same_text() -> None:
    values = {"spec.predictor.model.storageUri": "models:/x/3", "spec.predictor.minReplicas": "1"}
    once = yamledit.edit(MANIFEST, values)
    assert once != MANIFEST and yamledit.edit(once, values) is once


def test_placeholders_are_filled_and_other_braces_left_alone() -> None:
    values = {"model_uri": "models:/m/3", "model_name": "m", "model_version": "3"}
    assert yamledit.fill("{model_uri} {model_name}:{model_version} {other} {", values) == "models:/m/3 m:3 {other} {"


def test_a_flow_mapping_falls_back_to_a_full_dump_that_keeps_comments() -> None:
    after = yamledit.edit(MANIFEST, {"spec.predictor.model.modelFormat.version": "1"})
    assert yaml.safe_load(after)["spec"]["predictor"]["model"]["modelFormat"] == {"name": "sklearn", "version": 1}
    assert "# replaced on deploy" in after and "# the service name" in after


@pytest.mark.parametrize(("text", "path", "message"), [
    ("a: 1\n", "a.b", "not a mapping"),
    ("a: [1]\n", "a[3]", "no item [3]"),
    ("a: {b: 1}\n", "a", "mapping or list"),
    ("a: 1\n---\nb: 2\n", "a", "2 YAML documents"),
    ("- 1\n", "a", "not a YAML mapping"),
    ("a: [1\n", "a", "not valid YAML"),
    ("a: 1\n", "a..b", "not a dotted path"),
    ("a: {}\n", "a.b[0]", "never created"),
])
def test_bad_paths_and_manifests_say_why(text: str, path: str, message: str) -> None:
    with pytest.raises(yamledit.ManifestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        yamledit.edit(text, {path: "x"})


@settings(max_examples=150, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
       quote=st.sampled_from(["", "'", '"']))
def test_any_string_reads_back_exactly(value: str, quote: str) -> None:
    text = f"# head\nspec:\n  uri: {quote}old{quote}   # keep me\n  other: 1\n"
    after = yamledit.edit(text, {"spec.uri": value})
    assert yaml.safe_load(after)["spec"] == {"uri": value, "other": 1}
    before_lines, after_lines = text.splitlines(), after.splitlines()
    assert after_lines[:2] + after_lines[3:] == before_lines[:2] + before_lines[3:]  # edited in place
    assert after_lines[2].startswith("  uri: ") and after_lines[2].endswith("   # keep me")


def test_crlf_files_list_items_and_a_missing_final_newline() -> None:
    assert yamledit.edit("a: 1\r\nb:\r\n  c: x # c\r\n", {"b.c": "new", "b.e": "5", "f.g": "h"}) == \
        "a: 1\r\nb:\r\n  c: new # c\r\n  e: 5\r\nf:\r\n  g: h\r\n"
    assert yamledit.edit("b:\n  c: x", {"b.z": "1"}) == "b:\n  c: x\n  z: 1\n"
    items = "x:\n  - name: a\n    image: i:1\n  - name: b\n    image: j:1\n"
    assert yamledit.edit(items, {"x[1].image": "j:2", "x[0].tag": "v"}) == \
        "x:\n  - name: a\n    image: i:1\n    tag: v\n  - name: b\n    image: j:2\n"
