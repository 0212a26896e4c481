"""CompilerConfig against its reference, docs/compiler-config.md, and its user-facing behaviour.

The reference is parsed here and compared with the generated JSON Schema field by field, so
"every field with identical names, types, defaults, bounds, enum values and descriptions" is
checked, not assumed. The rest covers what users meet: files, --set and one-line errors.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aipuc import config as config_module
from aipuc.config import CompilerConfig, QuantizationScheme
from aipuc.errors import ConfigError

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "compiler-config.md"

# Kept in the order docs/compiler-config.md renders them: description, bounds, enum, default.
_PROPERTY_HEAD = re.compile(r"^- \*\*`(\w+)`\*\*(?: \*\((\w+)(?:, format: (\w+))?\)\*)?: (.*)$")
_DESCRIPTION_TAIL = re.compile(
    r"^(?P<description>.*?)"
    r"(?: Minimum: `(?P<minimum>[^`]*)`\.)?"
    r"(?: Exclusive minimum: `(?P<exclusiveMinimum>[^`]*)`\.)?"
    r"(?: Maximum: `(?P<maximum>[^`]*)`\.)?"
    r"(?: Exclusive maximum: `(?P<exclusiveMaximum>[^`]*)`\.)?"
    r"(?: Must be one of: `(?P<enum>[^`]*)`\.)?"
    r"(?: Default: `(?P<default>[^`]*)`\.)?$"
)
_BOUND_KEYS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
_DEFINITION = re.compile(
    r"### (\w+)\n  \*\((\w+)\)\*: (.*?) Must be one of: `(\[.*?\])`\.", re.DOTALL
)
_VARIANT = re.compile(r"^- \*(\w+)\*(?:: (.*))?$")
_REFER_TO = re.compile(r"Refer to \[(\w+)\]")


def _described(text: str) -> dict[str, Any]:
    """Splits a rendered line into its description, default and the schema keys appended to it."""
    parts = _DESCRIPTION_TAIL.match(text)
    assert parts, text
    shape = {key: json.loads(parts[key]) for key in (*_BOUND_KEYS, "enum") if parts[key]}
    return {"description": parts["description"], "default": parts["default"], "shape": shape}


def _parse_definitions(text: str) -> dict[str, dict[str, Any]]:
    section = text.split("## Definitions", 1)[1]
    return {
        name: {"type": kind, "enum": json.loads(values), "description": description}
        for name, kind, description, values in _DEFINITION.findall(section)
    }


def _parse_properties(text: str, definitions: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """Each property as {description, default (JSON text or None), variants (schema shapes)}."""

    def referred(line: str) -> dict[str, Any]:
        definition = definitions[_REFER_TO.search(line)[1]]
        return {"type": definition["type"], "enum": definition["enum"]}

    section = text.split("## Properties", 1)[1].split("## Definitions", 1)[0]
    properties = {}
    for block in re.split(r"\n(?=- \*\*`)", section.strip()):
        head, *nested = [line.strip() for line in block.splitlines() if line.strip()]
        name, kind, path_format, rest = _PROPERTY_HEAD.match(head).groups()
        described = _described(rest)
        if kind is None:  # an "All of" or "Any of" list of variants follows
            variants = []
            for line in nested[1:]:
                if _REFER_TO.search(line):
                    variants.append(referred(line))
                else:
                    variant_kind, bounds = _VARIANT.match(line).groups()
                    variants.append(
                        {"type": variant_kind, **_described(f" {bounds or ''}")["shape"]}
                    )
        else:
            variant = {"type": kind, **described["shape"]}
            if path_format:
                variant["format"] = path_format
            if nested:  # "- **Items**: Refer to [X]"
                variant["items"] = referred(nested[0])
            variants = [variant]
        properties[name] = {
            "description": described["description"],
            "default": described["default"],
            "variants": variants,
        }
    return properties


REFERENCE_TEXT = REFERENCE.read_text(encoding="utf-8")
REFERENCE_DEFINITIONS = _parse_definitions(REFERENCE_TEXT)
REFERENCE_PROPERTIES = _parse_properties(REFERENCE_TEXT, REFERENCE_DEFINITIONS)
SCHEMA = CompilerConfig.json_schema()


def _shape(node: dict[str, Any]) -> dict[str, Any]:
    """The part of a schema node the reference renders: type, format, bounds, enum, items."""
    if "$ref" in node:
        node = SCHEMA["$defs"][node["$ref"].rsplit("/", 1)[1]]
    shape = {key: node[key] for key in ("type", "format", *_BOUND_KEYS, "enum") if key in node}
    if "items" in node:
        shape["items"] = _shape(node["items"])
    return shape


def _variants(node: dict[str, Any]) -> list[dict[str, Any]]:
    alternatives = node.get("anyOf") or node.get("allOf") or [node]
    return [_shape(alternative) for alternative in alternatives]


def _same(left: Any, right: Any) -> bool:
    """Equal as JSON text, so 1 differs from 1.0 and true from 1."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


def _error(**fields: Any) -> str:
    with pytest.raises(ConfigError) as raised:
        CompilerConfig(**fields)
    message = str(raised.value)
    assert "\n" not in message
    return message


# The reference -----------------------------------------------------------------------------


def test_reference_parses_completely():
    assert len(REFERENCE_PROPERTIES) == REFERENCE_TEXT.count("\n- **`")
    assert len(REFERENCE_DEFINITIONS) == 7


def test_field_names_and_order_are_the_references():
    assert list(SCHEMA["properties"]) == list(REFERENCE_PROPERTIES)
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["description"] == "The Configuration for the Axelera AI Compiler."


@pytest.mark.parametrize("name", list(REFERENCE_PROPERTIES))
def test_field_matches_reference(name):
    reference, ours = REFERENCE_PROPERTIES[name], SCHEMA["properties"][name]
    variants = _variants(ours)
    if reference["default"] is None:
        # Paths with no default in the reference: None here, and the driver picks the directory.
        assert ours["default"] is None
        assert _same(variants, [*reference["variants"], {"type": "null"}])
    else:
        assert json.dumps(ours["default"]) == reference["default"]
        assert _same(variants, reference["variants"])
    # The renderer appends a period unless the description already ends in punctuation.
    ending = "" if re.search(r"[.?!;]$", ours["description"]) else "."
    assert ours["description"] + ending == reference["description"]


@pytest.mark.parametrize("name", list(REFERENCE_DEFINITIONS))
def test_definition_matches_reference(name):
    reference = REFERENCE_DEFINITIONS[name]
    enum_class = getattr(config_module, name)
    assert issubclass(enum_class, StrEnum)
    assert [member.value for member in enum_class] == reference["enum"]
    ours = SCHEMA["$defs"][name]
    assert _same(_shape(ours), {"type": reference["type"], "enum": reference["enum"]})

    def words(text: str) -> list[str]:
        return text.replace("<br>", " ").split()

    assert words(ours["description"]) == words(reference["description"])


def test_schema_adds_only_the_memory_space_definition():
    assert set(SCHEMA["$defs"]) - set(REFERENCE_DEFINITIONS) == {"MemorySpace"}


def test_defaults_are_valid_and_are_what_an_empty_file_gives(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert CompilerConfig.load(empty) == CompilerConfig()


# Bounds and enums, derived from the schema that the tests above tie to the reference ----------

# Per bound: where the value just inside and just outside lie (as steps from the bound), and
# how the error reads.
_BOUND_PROBES = {
    "minimum": (0, -1, "is below the minimum"),
    "exclusiveMinimum": (1, 0, "is not above the exclusive minimum"),
    "maximum": (0, 1, "is above the maximum"),
    "exclusiveMaximum": (-1, 0, "is not below the exclusive maximum"),
}


def _step(value: float, direction: int) -> float:
    """The neighbour of a bound: the next integer, or the next representable float."""
    if direction == 0:
        return value
    if isinstance(value, int):
        return value + direction
    return math.nextafter(value, direction * math.inf)


def _bound_cases():
    for name, node in SCHEMA["properties"].items():
        for variant in _variants(node):
            for key in (key for key in _BOUND_KEYS if key in variant):
                bound = variant[key]
                inside, outside, problem = _BOUND_PROBES[key]
                yield pytest.param(name, key, _step(bound, inside), None, id=f"{name}-{key}-in")
                message = (
                    f"config field '{name}': {json.dumps(_step(bound, outside))} {problem} {bound}"
                )
                yield pytest.param(
                    name, key, _step(bound, outside), message, id=f"{name}-{key}-out"
                )


BOUND_CASES = list(_bound_cases())


def test_every_reference_bound_is_exercised():
    reference_bounds = {
        (name, key)
        for name, reference in REFERENCE_PROPERTIES.items()
        for variant in reference["variants"]
        for key in _BOUND_KEYS
        if key in variant
    }
    assert {tuple(case.values[:2]) for case in BOUND_CASES} == reference_bounds


@pytest.mark.parametrize(("name", "key", "value", "message"), BOUND_CASES)
def test_bound(name, key, value, message):
    if message is None:
        assert getattr(CompilerConfig(**{name: value}), name) == value
    else:
        assert _error(**{name: value}) == message


def _enum_fields():
    for name, node in SCHEMA["properties"].items():
        for variant in _variants(node):
            values = variant.get("enum") or variant.get("items", {}).get("enum")
            if values:
                yield name, values, "items" in variant


ENUM_FIELDS = list(_enum_fields())
# The graph cleaner's condition and node are only valid as a pair, with a positive threshold.
_COMPANIONS = {
    "graph_cleaner_condition": {"graph_cleaner_node": "Gemm", "graph_cleaner_threshold": 1},
    "graph_cleaner_node": {
        "graph_cleaner_condition": "maximum_weight_tensor_size",
        "graph_cleaner_threshold": 1,
    },
}


@pytest.mark.parametrize(
    ("name", "value", "is_list"),
    [(name, value, is_list) for name, values, is_list in ENUM_FIELDS for value in values],
)
def test_every_enum_value_is_accepted(name, value, is_list):
    config = CompilerConfig(**{name: [value] if is_list else value}, **_COMPANIONS.get(name, {}))
    assert getattr(config, name) == ((value,) if is_list else value)


@pytest.mark.parametrize(("name", "values", "is_list"), ENUM_FIELDS)
def test_wrong_enum_value_names_field_and_choices(name, values, is_list):
    if is_list:
        message = _error(**{name: [values[0], "bogus"]})
        assert message == f"config field '{name}[1]': 'bogus' is not one of {', '.join(values)}"
    else:
        message = _error(**{name: "bogus"})
        assert message == f"config field '{name}': 'bogus' is not one of {', '.join(values)}"


@pytest.mark.parametrize("name", ["dpu_instructions_home", "dwpu_instructions_home"])
def test_instructions_home_values(name):
    for value in ("default", "l2"):
        assert getattr(CompilerConfig(**{name: value}), name) == value
    assert _error(**{name: "global.l2"}) == (
        f"config field '{name}': 'global.l2' is not one of default, l2"
    )


# Unknown keys and wrong types ----------------------------------------------------------------


def test_unknown_field_suggests_the_nearest_name():
    assert _error(tileing_depth=6) == (
        "unknown config field 'tileing_depth' (did you mean 'tiling_depth'?)"
    )
    assert _error(zzz=1) == "unknown config field 'zzz'"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tiling_depth": "6"}, "config field 'tiling_depth': '6' is not an integer"),
        ({"tiling_depth": 6.0}, "config field 'tiling_depth': 6.0 is not an integer"),
        ({"tiling_depth": True}, "config field 'tiling_depth': true is not an integer"),
        ({"use_sysdma": 1}, "config field 'use_sysdma': 1 is not a boolean (true or false)"),
        (
            {"use_sysdma": "true"},
            "config field 'use_sysdma': 'true' is not a boolean (true or false)",
        ),
        ({"resources_used": False}, "config field 'resources_used': false is not a number"),
        ({"resources_used": "0.5"}, "config field 'resources_used': '0.5' is not a number"),
        ({"model_name": 3}, "config field 'model_name': 3 is not a string"),
        ({"output_dir": 3}, "config field 'output_dir': 3 is not a path string"),
        ({"profiling_levels": "[B]"}, "config field 'profiling_levels': '[B]' is not a list"),
        (
            {"compiler_mode": 1},
            "config field 'compiler_mode': 1 is not one of "
            "quantize_and_lower, quantize_only, lower_only",
        ),
        (
            {"softmax_neutral_value": -math.inf},
            "config field 'softmax_neutral_value': -Infinity is not a finite number",
        ),
    ],
)
def test_wrong_type(fields, message):
    assert _error(**fields) == message


def test_floats_accept_integers():
    assert CompilerConfig(resources_used=1).resources_used == 1.0


def test_several_problems_share_one_line():
    assert _error(tiling_depth=0, frequency=1) == (
        "config field 'tiling_depth': 0 is below the minimum 1; "
        "config field 'frequency': 1 is below the minimum 20000000"
    )


def test_config_is_frozen_and_replace_revalidates():
    config = CompilerConfig()
    with pytest.raises(ValueError):
        config.tiling_depth = 6  # type: ignore[misc]
    assert config.replace(tiling_depth=6).tiling_depth == 6
    with pytest.raises(ConfigError, match="'l1_size_reserved'.*'l1_size_used'"):
        config.replace(l1_size_used=config.l1_size_reserved)


# Cross-field rules ---------------------------------------------------------------------------

_DEFAULT = CompilerConfig()
_L1_USABLE = _DEFAULT.l1_size_used - _DEFAULT.l1_size_reserved
_L2_USABLE = (
    _DEFAULT.l2_size_used - _DEFAULT.l2_size_reserved - 2 * _DEFAULT.l2_size_reserved_tasklist
)
_DDR_USABLE = _DEFAULT.ddr_size_used - _DEFAULT.ddr_size_reserved


@pytest.mark.parametrize(
    "fields",
    [
        {"l1_size_reserved": 0},
        {"l1_size_reserved": _DEFAULT.l1_size_used - 1},
        {"l2_size_reserved": 0, "l2_size_reserved_tasklist": 0},
        {"aipu_cores_used": 4},
        {"ddr_size_reserved": _DEFAULT.ddr_size_used - 1},
        {"ddr_size_used": _DEFAULT.ddr_size_max},
        {"l1_constraint": 1},
        {"l1_constraint": _L1_USABLE},
        {"l2_constraint": _L2_USABLE, "aipu_cores_used": 2},
        {"ddr_constraint": _DDR_USABLE},
        {"icrx_force": -1},
        {"icrx_force": 1},
        {"icrx_force": 4, "icrx_max_factor": 4},
        {
            "graph_cleaner_condition": "maximum_weight_tensor_size",
            "graph_cleaner_node": "Gemm",
            "graph_cleaner_threshold": 1,
        },
        {"graph_cleaner_threshold": 5},
        {"dfs_search_constraint": 1},
        {"host_processes_used": 1},
        {"softmax_neutral_value": -1e-6},
        {"split_buffer_promotion": True},
        {"enable_buffer_promotion": False},
        *(
            {"quantize_dw_channel_wise": True, "quantization_scheme": scheme}
            for scheme in QuantizationScheme
        ),
    ],
)
def test_rules_allow(fields):
    CompilerConfig(**fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"l1_size_reserved": _DEFAULT.l1_size_used},
            "config field 'l1_size_reserved' (4194304) must be below 'l1_size_used' (4194304)",
        ),
        (
            {"l2_size_reserved": 30_000_000, "aipu_cores_used": 4},
            "config fields 'l2_size_reserved' + 'aipu_cores_used' * 'l2_size_reserved_tasklist' "
            "(30000000 + 4 * 1048576 = 34194304) must be below 'l2_size_used' (33554432)",
        ),
        (
            {"ddr_size_reserved": _DEFAULT.ddr_size_used},
            "config field 'ddr_size_reserved' (1073741824) must be below "
            "'ddr_size_used' (1073741824)",
        ),
        (
            {"ddr_size_used": _DEFAULT.ddr_size_max + 1},
            "config field 'ddr_size_used' (1073741825) must not be above "
            "'ddr_size_max' (1073741824)",
        ),
        (
            {"l1_constraint": 0},
            "config field 'l1_constraint': 0 must be positive (or null for no limit)",
        ),
        (
            {"l1_constraint": _L1_USABLE + 1},
            f"config field 'l1_constraint': {_L1_USABLE + 1} is above the usable size {_L1_USABLE} "
            "('l1_size_used' - 'l1_size_reserved')",
        ),
        (
            {"l2_constraint": _L2_USABLE + 1, "aipu_cores_used": 2},
            f"config field 'l2_constraint': {_L2_USABLE + 1} is above the usable size "
            f"{_L2_USABLE} ('l2_size_used' - 'l2_size_reserved' - 'aipu_cores_used' * "
            "'l2_size_reserved_tasklist')",
        ),
        (
            {"ddr_constraint": -5},
            "config field 'ddr_constraint': -5 must be positive (or null for no limit)",
        ),
        (
            {"ddr_constraint": _DDR_USABLE + 1},
            f"config field 'ddr_constraint': {_DDR_USABLE + 1} is above the usable size "
            f"{_DDR_USABLE} ('ddr_size_used' - 'ddr_size_reserved')",
        ),
        (
            {"icrx_force": 0},
            "config field 'icrx_force': 0 must be -1 (automatic) or between 1 and "
            "'icrx_max_factor' (8)",
        ),
        (
            {"icrx_force": 5, "icrx_max_factor": 4},
            "config field 'icrx_force': 5 must be -1 (automatic) or between 1 and "
            "'icrx_max_factor' (4)",
        ),
        ({"icrx_force": -2}, "config field 'icrx_force': -2 must be -1"),
        (
            {"graph_cleaner_condition": "maximum_weight_tensor_size", "graph_cleaner_threshold": 1},
            "config fields 'graph_cleaner_condition' and 'graph_cleaner_node' must be set together "
            "or both be null, not 'maximum_weight_tensor_size' and null",
        ),
        (
            {"graph_cleaner_node": "Clip"},
            "config fields 'graph_cleaner_condition' and 'graph_cleaner_node' must be set together "
            "or both be null, not null and 'Clip'",
        ),
        (
            {"graph_cleaner_threshold": -1},
            "config field 'graph_cleaner_threshold': -1 must not be negative",
        ),
        (
            {"graph_cleaner_condition": "maximum_weight_tensor_size", "graph_cleaner_node": "Gemm"},
            "config field 'graph_cleaner_threshold': 0 must be positive when "
            "'graph_cleaner_condition' is set ('maximum_weight_tensor_size')",
        ),
        (
            {"dfs_search_constraint": 0},
            "config field 'dfs_search_constraint': 0 is below 1 (null means the full search)",
        ),
        ({"force_h_tiling": 0}, "config field 'force_h_tiling': 0 is below the minimum 1"),
        ({"force_oc_tiling": 0}, "config field 'force_oc_tiling': 0 is below the minimum 1"),
        ({"host_processes_used": 0}, "config field 'host_processes_used': 0 is below 1"),
        (
            {"softmax_neutral_value": 0.0},
            "config field 'softmax_neutral_value': 0.0 must be negative so that padded lanes do "
            "not contribute to the softmax",
        ),
        (
            {"split_buffer_promotion": True, "enable_buffer_promotion": False},
            "config field 'split_buffer_promotion' is true but 'enable_buffer_promotion' is false",
        ),
        ({"l1_virtual_address": -1}, "config field 'l1_virtual_address': -1 must not be negative"),
        (
            {"l2_size_reserved_tasklist": -1},
            "config field 'l2_size_reserved_tasklist': -1 must not be negative",
        ),
    ],
)
def test_rules_reject(fields, message):
    assert message in _error(**fields)


def test_all_broken_rules_are_reported_together():
    message = _error(l1_size_reserved=_DEFAULT.l1_size_used, icrx_force=0, host_processes_used=0)
    assert message.count("; ") == 2


# Files and round trips -----------------------------------------------------------------------

_paths = st.text(alphabet="abz019._-/", min_size=1, max_size=12)


def _strategy(variant: dict[str, Any]) -> st.SearchStrategy:
    """Valid values for one schema variant, in the form a config file would hold them."""
    if "enum" in variant:
        return st.sampled_from(variant["enum"])
    kind = variant["type"]
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(variant.get("minimum"), variant.get("maximum"))
    if kind == "number":
        return st.floats(
            variant.get("minimum", variant.get("exclusiveMinimum")),
            variant.get("maximum", variant.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in variant,
            exclude_max="exclusiveMaximum" in variant,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "array":
        return st.lists(_strategy(variant["items"]), max_size=3)
    if variant.get("format") == "path":
        return _paths
    return st.text(max_size=12)


_FIELD_STRATEGIES = {
    name: st.one_of([_strategy(variant) for variant in _variants(node)])
    for name, node in SCHEMA["properties"].items()
}
_sizes = st.integers(0, 2**40)


@st.composite
def _rule_abiding_fields(draw) -> dict[str, Any]:
    """Fields tied by cross-field rules, drawn so that the rules hold."""
    cores = draw(st.integers(1, 4))
    l1_reserved, l2_reserved, tasklist, ddr_reserved = (draw(_sizes) for _ in range(4))
    l2_reserved_all = l2_reserved + cores * tasklist
    l1_used = draw(st.integers(l1_reserved + 1, l1_reserved + 2**40))
    l2_used = draw(st.integers(l2_reserved_all + 1, l2_reserved_all + 2**40))
    ddr_used = draw(st.integers(ddr_reserved + 1, ddr_reserved + 2**40))
    max_factor = draw(st.integers(2, 8))
    cleaner = draw(st.sampled_from([None, *config_module.GraphCleanerCondition]))
    enable_promotion = draw(st.booleans())
    return {
        "aipu_cores_used": cores,
        "l1_size_reserved": l1_reserved,
        "l1_size_used": l1_used,
        "l1_constraint": draw(st.none() | st.integers(1, l1_used - l1_reserved)),
        "l2_size_reserved": l2_reserved,
        "l2_size_reserved_tasklist": tasklist,
        "l2_size_used": l2_used,
        "l2_constraint": draw(st.none() | st.integers(1, l2_used - l2_reserved_all)),
        "ddr_size_reserved": ddr_reserved,
        "ddr_size_used": ddr_used,
        "ddr_size_max": draw(st.integers(ddr_used, ddr_used + 2**40)),
        "ddr_constraint": draw(st.none() | st.integers(1, ddr_used - ddr_reserved)),
        "l1_virtual_address": draw(_sizes),
        "l1_core0_physical_address": draw(_sizes),
        "icrx_max_factor": max_factor,
        "icrx_force": draw(st.just(-1) | st.integers(1, max_factor)),
        "graph_cleaner_condition": cleaner,
        "graph_cleaner_node": None
        if cleaner is None
        else draw(st.sampled_from(config_module.GraphCleanerNode)),
        "graph_cleaner_threshold": draw(st.integers(0 if cleaner is None else 1, 2**31)),
        "dfs_search_constraint": draw(st.none() | st.integers(1, 2**31)),
        "host_processes_used": draw(st.integers(1, 64)),
        "softmax_neutral_value": draw(
            st.floats(max_value=0.0, exclude_max=True, allow_infinity=False, allow_nan=False)
        ),
        "enable_buffer_promotion": enable_promotion,
        "split_buffer_promotion": enable_promotion and draw(st.booleans()),
        "dpu_instructions_home": draw(st.sampled_from(["default", "l2"])),
        "dwpu_instructions_home": draw(st.sampled_from(["default", "l2"])),
    }


valid_configs = st.builds(
    lambda fields, tied: CompilerConfig(**(fields | tied)),
    st.fixed_dictionaries(_FIELD_STRATEGIES),
    _rule_abiding_fields(),
)
_round_trips = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("configs")


@_round_trips
@given(config=valid_configs, suffix=st.sampled_from([".toml", ".json"]))
def test_save_load_round_trip(files, config, suffix):
    path = files / f"config{suffix}"
    config.save(path)
    assert CompilerConfig.load(path) == config


@_round_trips
@given(config=valid_configs)
def test_show_lists_every_field_and_reads_back(files, config):
    shown = config.show()
    for name in SCHEMA["properties"]:
        assert re.search(rf"^(# )?{name} ", shown, re.MULTILINE)
    path = files / "shown.toml"
    path.write_text(shown, encoding="utf-8")
    assert CompilerConfig.load(path) == config


def test_toml_drops_null_and_json_keeps_it():
    config = CompilerConfig(model_debug_save_dir="debug")
    in_toml = tomllib.loads(config.to_toml())
    assert "output_dir" not in in_toml and in_toml["model_debug_save_dir"] == "debug"
    assert json.loads(config.to_json())["output_dir"] is None


def test_load_reads_enums_paths_and_lists_from_toml(files):
    path = files / "typed.toml"
    path.write_text(
        'compiler_mode = "quantize_only"\noutput_dir = "build/x"\n'
        'profiling_levels = ["[B]", "[K]"]\nio_memory_pool = "global.l2"\n'
    )
    config = CompilerConfig.load(path)
    assert config.compiler_mode is config_module.CompilerMode.QUANTIZE_ONLY
    assert config.output_dir == Path("build/x")
    assert config.profiling_levels == (
        config_module.ProfilingLevel.B,
        config_module.ProfilingLevel.K,
    )
    assert config.io_memory_pool == "global.l2"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("c.yaml", "", "config file {path}: unknown suffix '.yaml', expected .toml or .json"),
        ("c", "", "config file {path}: unknown suffix '', expected .toml or .json"),
        (
            "c.toml",
            "tiling_depth = 6\nbad line\n",
            "config file {path}: invalid TOML: Expected '=' after a key in a key/value pair "
            "(at line 2, column 5)",
        ),
        ("c.json", '{\n  "tiling_depth": 6,\n}', "config file {path}, line 3: invalid JSON: "),
        ("c.json", "[1]", "config file {path}: expected a JSON object of config fields, not list"),
        (
            "c.toml",
            "tiling_depth = 0\n",
            "config file {path}: config field 'tiling_depth': 0 is below the minimum 1",
        ),
        ("c.toml", "[tiling]\ndepth = 6\n", "config file {path}: unknown config field 'tiling'"),
        (
            "c.json",
            '{"tiling_depth": "6"}',
            "config file {path}: config field 'tiling_depth': '6' is not an integer",
        ),
        (
            "c.toml",
            "frequency = 8e8\n",
            "config file {path}: config field 'frequency': 800000000.0 is not an integer",
        ),
    ],
)
def test_load_errors(files, name, text, message):
    path = files / name
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        CompilerConfig.load(path)
    assert str(raised.value).startswith(message.format(path=path))


def test_load_missing_and_undecodable_files(files):
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.toml: No such file"):
        CompilerConfig.load(files / "nope.toml")
    latin1 = files / "latin1.toml"
    latin1.write_bytes(b'model_name = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"cannot read config file .*latin1\.toml: .*utf-8"):
        CompilerConfig.load(latin1)


def test_save_rejects_unknown_suffix(files):
    with pytest.raises(ConfigError, match="unknown suffix '.yml'"):
        CompilerConfig().save(files / "c.yml")


# --set ---------------------------------------------------------------------------------------


def test_set_parses_values_as_json_or_bare_strings():
    base = CompilerConfig(output_dir="old")
    config = base.with_overrides(
        [
            "tiling_depth=6",
            "use_sysdma=true",
            "mvm_utilization_limit=0.5",
            "io_memory_pool=global.l2",
            'profiling_levels=["[B]", "[T]"]',
            "output_dir=null",
            "runtime_dir=/opt/runtime",
            'model_name="quoted"',
            "graph_cleaner_dump_core_onnx=a=b.onnx",
            " force_h_tiling =2",
        ]
    )
    assert (config.tiling_depth, config.use_sysdma, config.mvm_utilization_limit) == (6, True, 0.5)
    assert config.io_memory_pool == "global.l2"
    assert config.profiling_levels == ("[B]", "[T]")
    assert config.output_dir is None
    assert config.runtime_dir == Path("/opt/runtime")
    assert config.model_name == "quoted"
    assert config.graph_cleaner_dump_core_onnx == "a=b.onnx"
    assert config.force_h_tiling == 2
    assert base.output_dir == Path("old") and base.tiling_depth == 1


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("tiling_depth", "--set expects key=value, got 'tiling_depth'"),
        ('tiling_depth="6"', "config field 'tiling_depth': '6' is not an integer"),
        ("tiling_depth=six", "config field 'tiling_depth': 'six' is not an integer"),
        ("use_sysdma=1", "config field 'use_sysdma': 1 is not a boolean (true or false)"),
        ("tileing_depth=6", "unknown config field 'tileing_depth' (did you mean 'tiling_depth'?)"),
        (
            "l1_size_reserved=4194304",
            "config field 'l1_size_reserved' (4194304) must be below 'l1_size_used' (4194304)",
        ),
    ],
)
def test_set_errors(assignment, message):
    with pytest.raises(ConfigError) as raised:
        CompilerConfig().with_overrides([assignment])
    assert str(raised.value) == message


def test_set_validates_all_assignments_together():
    config = CompilerConfig().with_overrides(["icrx_max_factor=4", "icrx_force=4"])
    assert (config.icrx_max_factor, config.icrx_force) == (4, 4)
