"""Register ONNX schemas for the rrsr custom ops, from the op spec, so ``onnx.checker`` (full check) and shape
inference accept exported graphs and onnxscript can emit the nodes."""
from __future__ import annotations

import onnx
from onnx import defs, helper

from plugins.opspec import OpSpec, load_specs

_ATTR_TYPES = {"int": defs.OpSchema.AttrType.INT, "ints": defs.OpSchema.AttrType.INTS,
               "float": defs.OpSchema.AttrType.FLOAT, "string": defs.OpSchema.AttrType.STRING}
_TYPE_STR = {"float": "tensor(float)", "float16": "tensor(float16)", "int32": "tensor(int32)",
             "int64": "tensor(int64)"}


def _default(attr: dict) -> onnx.AttributeProto:
    value = attr["default"]
    if attr["type"] == "ints":
        return helper.make_attribute(attr["name"], [int(v) for v in value])
    if attr["type"] == "string":
        return helper.make_attribute(attr["name"], str(value).encode())
    return helper.make_attribute(attr["name"], value)


def schema_from_spec(spec: OpSpec) -> defs.OpSchema:
    Param = defs.OpSchema.FormalParameter
    opt = defs.OpSchema.FormalParameterOption
    constraints: dict[str, list[str]] = {}
    for p in (*spec.inputs, *spec.outputs):
        constraints.setdefault(p["type_param"], [_TYPE_STR[t] for t in p["types"]])
    inputs = [Param(p["name"], p["type_param"], p.get("doc", ""),
                    param_option=opt.Optional if p.get("optional") else opt.Single) for p in spec.inputs]
    outputs = [Param(p["name"], p["type_param"], p.get("doc", "")) for p in spec.outputs]
    attrs = [defs.OpSchema.Attribute(a["name"], _default(a), a.get("doc", "")) for a in spec.attributes]
    return defs.OpSchema(spec.op_type, spec.domain, spec.since_version, spec.doc, inputs=inputs, outputs=outputs,
                         type_constraints=[(k, v, "") for k, v in constraints.items()], attributes=attrs)


def register_schemas() -> None:
    """Idempotent: (re-)register every rrsr op schema with the onnx package."""
    for spec in load_specs().values():
        if defs.has(spec.op_type, spec.domain):
            defs.deregister_schema(spec.op_type, spec.since_version, spec.domain)
        defs.register_schema(schema_from_spec(spec))
