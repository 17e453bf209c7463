#!/usr/bin/env python3
"""Generate the C++ header of op-contract constants from plugins/ops/*.json (stdlib only).

CMake runs this at build time, so the C++ hosts never retype an op type, domain, input name, attribute name or
default: they use the constants written here, and ``RrsrOrtOpsDescribe()`` in the ORT library serialises those
same constants back to JSON so a test can compare them with the spec files.

Usage: gen_op_header.py --out <header> <op.json>...
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_TYPES = {"float": "kFloat32", "float16": "kFloat16", "int32": "kInt32", "int64": "kInt64"}
_ATTR_TYPES = {"int": "kInt", "ints": "kInts", "string": "kString"}
_MAX_INT_DEFAULTS = 8


def _camel(name: str) -> str:
    """'routing_weight' -> 'RoutingWeight', 'X' -> 'X', 'B' -> 'B'."""
    return "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)


def _snake_op(op_type: str) -> str:
    """'RrsrModulatedDeformConv' -> 'modulated_deform_conv' (the C++ namespace of the op)."""
    stem = op_type[4:] if op_type.startswith("Rrsr") else op_type
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower()


def _cstr(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid C string literal for the ASCII we accept


def _fail(path: Path, msg: str) -> None:
    sys.exit(f"gen_op_header: {path}: {msg}")


def _check(path: Path, spec: dict) -> None:
    for key in ("op_type", "domain", "since_version", "plugin_version", "plugin_namespace", "inputs", "outputs",
                "attributes"):
        if key not in spec:
            _fail(path, f"missing key '{key}'")
    for io in spec["inputs"] + spec["outputs"]:
        for t in io["types"]:
            if t not in _TYPES:
                _fail(path, f"input/output '{io['name']}' has unsupported type '{t}' (known: {sorted(_TYPES)})")
    seen: dict[str, list] = {}
    for io in spec["inputs"] + spec["outputs"]:
        # registrations enumerate each type parameter once, so its inputs/outputs must agree on the types
        prev = seen.setdefault(io["type_param"], io["types"])
        if prev != io["types"]:
            _fail(path, f"type parameter '{io['type_param']}' has types {prev} and {io['types']} "
                        f"(at '{io['name']}'): inputs sharing a parameter must list the same types")
    for a in spec["attributes"]:
        if a["type"] not in _ATTR_TYPES:
            _fail(path, f"attribute '{a['name']}' has unsupported type '{a['type']}'")
        if a["type"] == "ints" and len(a.get("default", [])) > _MAX_INT_DEFAULTS:
            _fail(path, f"attribute '{a['name']}' default longer than {_MAX_INT_DEFAULTS}")


def _op_block(path: Path, spec: dict) -> str:
    ns = _snake_op(spec["op_type"])
    out = [f"// ---- {spec['op_type']} (from {path.name})",
           f"namespace {ns} {{",
           f"inline constexpr char kOpType[] = {_cstr(spec['op_type'])};",
           f"inline constexpr char kDomain[] = {_cstr(spec['domain'])};",
           f"inline constexpr int kSinceVersion = {int(spec['since_version'])};",
           f"inline constexpr char kPluginVersion[] = {_cstr(spec['plugin_version'])};",
           f"inline constexpr char kPluginNamespace[] = {_cstr(spec['plugin_namespace'])};",
           ""]
    names = [f"kInput{_camel(i['name'])} = {k}" for k, i in enumerate(spec["inputs"])]
    out.append("enum Input : int { " + ", ".join(names) + f", kNumInputs = {len(spec['inputs'])} }};")
    out.append("inline constexpr IoSpec kInputs[] = {")
    for i in spec["inputs"]:
        types = ", ".join(f"DType::{_TYPES[t]}" for t in i["types"])
        out.append(f"    {{{_cstr(i['name'])}, {_cstr(i['type_param'])}, {str(bool(i['optional'])).lower()}, "
                   f"{len(i['types'])}, {{{types}}}, {_cstr(i['shape'])}}},")
    out.append("};")
    names = [f"kOutput{_camel(o['name'])} = {k}" for k, o in enumerate(spec["outputs"])]
    out.append("enum Output : int { " + ", ".join(names) + f", kNumOutputs = {len(spec['outputs'])} }};")
    out.append("inline constexpr IoSpec kOutputs[] = {")
    for o in spec["outputs"]:
        types = ", ".join(f"DType::{_TYPES[t]}" for t in o["types"])
        out.append(f"    {{{_cstr(o['name'])}, {_cstr(o['type_param'])}, false, {len(o['types'])}, {{{types}}}, "
                   f"{_cstr(o['shape'])}}},")
    out.append("};")
    out.append("")
    attrs = spec["attributes"]
    names = [f"kAttr{_camel(a['name'])} = {k}" for k, a in enumerate(attrs)]
    out.append("enum Attr : int { " + ", ".join(names) + f", kNumAttrs = {len(attrs)} }};")
    out.append("inline constexpr AttrSpec kAttrs[] = {")
    for a in attrs:
        t = a["type"]
        d = a.get("default")
        if t == "ints":
            ints, nints, sdef = list(d), len(d), ""
        elif t == "int":
            ints, nints, sdef = [int(d)], 1, ""
        else:
            ints, nints, sdef = [], 0, d
        length = int(a.get("length", -1))
        has_min = "min" in a
        vmin = int(a.get("min", 0))
        ints_c = ", ".join(str(int(v)) for v in ints) or "0"
        out.append(f"    {{{_cstr(a['name'])}, AttrType::{_ATTR_TYPES[t]}, {length}, {nints}, {{{ints_c}}}, "
                   f"{_cstr(sdef)}, {str(has_min).lower()}, {vmin}}},")
    out.append("};")
    # Named constants for the common case of reading one attribute by name.
    for a in attrs:
        out.append(f"inline constexpr const char* kAttrName{_camel(a['name'])} = {_cstr(a['name'])};")
    out.append(f"}}  // namespace {ns}")
    out.append("")
    return "\n".join(out)


_PRELUDE = """\
// Generated by plugins/ops/gen_op_header.py from plugins/ops/*.json. Do not edit: edit the JSON spec.
#pragma once
#include <cstdint>

namespace rrsr {
namespace spec {

enum class DType : int { kFloat32 = 0, kFloat16 = 1, kInt32 = 2, kInt64 = 3 };
enum class AttrType : int { kInt = 0, kInts = 1, kString = 2 };

struct IoSpec {
  const char* name;
  const char* type_param;
  bool optional;
  int num_types;
  DType types[4];
  const char* shape;
};

struct AttrSpec {
  const char* name;
  AttrType type;
  int length;             // required number of values for kInts, -1 when free
  int num_int_defaults;   // kInt: 1, kInts: number of values, kString: 0
  int64_t int_defaults[%d];
  const char* string_default;
  bool has_min;           // every int value must be >= min_value
  int64_t min_value;
};

""" % _MAX_INT_DEFAULTS

_POSTLUDE = """\
}  // namespace spec
}  // namespace rrsr
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("specs", nargs="+", type=Path)
    args = ap.parse_args(argv)
    blocks = []
    domains = set()
    for path in sorted(args.specs):
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            _fail(path, f"cannot read JSON: {e}")
        _check(path, spec)
        domains.add(spec["domain"])
        blocks.append(_op_block(path, spec))
    if len(domains) != 1:
        sys.exit(f"gen_op_header: all ops must share one domain, got {sorted(domains)}")
    text = _PRELUDE + f"inline constexpr char kDomain[] = {_cstr(domains.pop())};\n\n" + "\n".join(blocks) + _POSTLUDE
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Write only on change so dependent objects are not rebuilt needlessly.
    if not args.out.exists() or args.out.read_text() != text:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
