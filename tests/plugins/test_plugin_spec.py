"""The op contract compiled into the library equals the JSON spec (names, types, optionality, attribute names,
types, lengths, defaults, minimums), the generated header is current, and every type combination is registered."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPS = REPO / "plugins" / "ops"
SPECS = sorted(OPS.glob("*.json"))


def _specs() -> dict:
    return {s["op_type"]: s for s in (json.loads(p.read_text()) for p in SPECS)}


@pytest.fixture(scope="module")
def described(ort_lib) -> dict:
    from plugins.ort_library import describe

    return describe(ort_lib)


def test_library_ops_are_the_spec_ops(described):
    specs = _specs()
    assert {o["op_type"] for o in described["ops"]} == set(specs)
    assert described["domain"] == {s["domain"] for s in specs.values()}.pop()


@pytest.mark.parametrize("op_type", sorted(_specs()))
def test_library_contract_equals_spec(described, op_type):
    spec = _specs()[op_type]
    lib = next(o for o in described["ops"] if o["op_type"] == op_type)
    for key in ("domain", "since_version", "plugin_version", "plugin_namespace"):
        assert lib[key] == spec[key], key
    for side in ("inputs", "outputs"):
        want = [{k: io[k] for k in ("name", "type_param", "types", "shape")} | {"optional": bool(io.get("optional"))}
                for io in spec[side]]
        got = [{k: io[k] for k in ("name", "type_param", "types", "shape", "optional")} for io in lib[side]]
        assert got == want, side
    want_attrs = []
    for a in spec["attributes"]:
        entry = {"name": a["name"], "type": a["type"], "default": a["default"]}
        if "length" in a:
            entry["length"] = a["length"]
        if "min" in a:
            entry["min"] = a["min"]
        want_attrs.append(entry)
    assert lib["attributes"] == want_attrs


@pytest.mark.parametrize("op_type", sorted(_specs()))
def test_every_type_combination_is_registered(described, op_type):
    spec = _specs()[op_type]
    lib = next(o for o in described["ops"] if o["op_type"] == op_type)
    params = []
    for io in spec["inputs"]:
        if io["type_param"] not in [p for p, _ in params]:
            params.append((io["type_param"], io["types"]))
    want = set()
    for combo in itertools.product(*[t for _, t in params]):
        chosen = dict(zip([p for p, _ in params], combo))
        want.add(tuple(chosen[io["type_param"]] for io in spec["inputs"]))
    for provider in {k["provider"] for k in lib["kernels"]}:
        got = {tuple(k["input_types"]) for k in lib["kernels"] if k["provider"] == provider}
        assert got == want, provider
    providers = {k["provider"] for k in lib["kernels"]}
    assert "CPUExecutionProvider" in providers
    assert ("CUDAExecutionProvider" in providers) == described["cuda"]


def test_generated_header_is_current(ort_lib, tmp_path):
    """The header the library was built from is what the generator makes from today's JSON files."""
    built = Path(ort_lib).parent / "generated" / "rrsr_op_spec.h"
    if not built.is_file():
        pytest.skip(f"no generated header next to {ort_lib} (library not built by plugins/CMakeLists.txt)")
    fresh = tmp_path / "rrsr_op_spec.h"
    subprocess.run([sys.executable, str(OPS / "gen_op_header.py"), "--out", str(fresh), *map(str, SPECS)],
                   check=True)
    assert fresh.read_text() == built.read_text(), "rebuild: bash scripts/build_plugins.sh"


def test_generated_header_holds_spec_names_and_defaults(tmp_path):
    """Generator alone (no build needed): every attribute name and default of the JSON appears in the header."""
    out = tmp_path / "rrsr_op_spec.h"
    subprocess.run([sys.executable, str(OPS / "gen_op_header.py"), "--out", str(out), *map(str, SPECS)], check=True)
    text = out.read_text()
    for spec in _specs().values():
        assert f'kOpType[] = "{spec["op_type"]}"' in text
        for a in spec["attributes"]:
            assert f'{{"{a["name"]}", AttrType::' in text, a["name"]
            d = a["default"]
            if a["type"] == "ints":
                assert "{" + ", ".join(map(str, d)) + "}" in text
            elif a["type"] == "string":
                assert f'"{d}", ' in text


def test_generator_rejects_unknown_type(tmp_path):
    bad = json.loads(SPECS[0].read_text())
    bad["inputs"][0]["types"] = ["bfloat16"]
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(bad))
    r = subprocess.run([sys.executable, str(OPS / "gen_op_header.py"), "--out", str(tmp_path / "h.h"), str(p)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "bfloat16" in r.stderr
