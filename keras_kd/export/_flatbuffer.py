"""Reads a .tflite flatbuffer: operator names, tensor types and an activation-memory estimate.

Uses the flatbuffer schema bindings shipped with ai-edge-litert (``schema_py_generated``), so no
interpreter has to be built, and a file whose ops the interpreter could not run is still readable.
"""

import numpy as np
from ai_edge_litert import schema_py_generated as _schema

_OP_NAMES = {v: k for k, v in vars(_schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k.lower() for k, v in vars(_schema.TensorType).items() if not k.startswith("_")}
# Bytes per element; sub-byte types (INT4, INT2, UINT4) are counted as whole bytes (an upper bound).
_TYPE_BYTES = {
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "int32": 4,
    "uint32": 4,
    "uint8": 1,
    "int8": 1,
    "int64": 8,
    "uint64": 8,
    "int16": 2,
    "uint16": 2,
    "bool": 1,
    "complex64": 8,
    "complex128": 16,
    "float64": 8,
    "int4": 1,
    "int2": 1,
    "uint4": 1,
    "float8_e4m3fn": 1,
    "float8_e5m2": 1,
}


def builtin_op_names():
    """All builtin operator names of the TFLite schema, e.g. ``{"CONV_2D", ...}``."""
    return set(_OP_NAMES.values())


def _op_name(code):
    builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
    name = _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")
    if name == "CUSTOM":
        custom = code.CustomCode()
        return f"CUSTOM:{custom.decode() if custom else '?'}"
    return name


def describe(content):
    """Parses a .tflite file's bytes into the facts that export and verification need.

    Args:
        content: The bytes of a .tflite file.

    Returns:
        A dict with ``ops`` (sorted distinct operator names; custom ops as ``CUSTOM:<name>``),
        ``input_dtypes`` / ``output_dtypes`` (tensor type names of the main subgraph's inputs and
        outputs, e.g. ``"int8"``) and ``arena_bytes`` (see ``arena_bytes``).

    Raises:
        ValueError: If ``content`` is not a TFLite flatbuffer.
    """
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ValueError("not a TFLite flatbuffer (the file identifier 'TFL3' is missing)")
    model = _schema.Model.GetRootAsModel(content, 0)
    ops = sorted({_op_name(model.OperatorCodes(i)) for i in range(model.OperatorCodesLength())})
    graph = model.Subgraphs(0)
    types = [
        _TYPE_NAMES.get(graph.Tensors(i).Type(), "unknown") for i in range(graph.TensorsLength())
    ]
    return {
        "ops": ops,
        "input_dtypes": [types[i] for i in graph.InputsAsNumpy()],
        "output_dtypes": [types[i] for i in graph.OutputsAsNumpy()],
        "arena_bytes": arena_bytes(model),
    }


def _tensor_bytes(tensor):
    shape = tensor.ShapeAsNumpy() if tensor.ShapeLength() else np.zeros(0, np.int32)
    elements = int(np.prod(np.maximum(shape, 1))) if len(shape) else 1
    return elements * _TYPE_BYTES.get(_TYPE_NAMES.get(tensor.Type(), ""), 4)


def arena_bytes(model):
    """Peak bytes of the activations alive at once while the main subgraph runs at batch 1.

    Constant tensors (weights, held in the flatbuffer) are excluded. Each activation lives from
    the op that writes it (graph inputs: from the start) to the last op that reads it (graph
    outputs and variables: to the end); the estimate is the largest total over the op sequence.
    This is what an ideal memory planner needs; TFLite Micro's arena is somewhat larger (alignment,
    per-op scratch buffers, interpreter bookkeeping), so budget some headroom on top of it.

    Args:
        model: A parsed ``schema_py_generated.Model``.

    Returns:
        The estimate in bytes (int).
    """
    graph = model.Subgraphs(0)
    count = graph.OperatorsLength()
    first, last, size = {}, {}, {}
    for t in range(graph.TensorsLength()):
        tensor = graph.Tensors(t)
        buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() < model.BuffersLength() else None
        constant = buffer is not None and (buffer.DataLength() > 0 or buffer.Size() > 0)
        if not constant:
            size[t] = _tensor_bytes(tensor)
            if tensor.IsVariable():
                first[t], last[t] = -1, count
    for t in graph.InputsAsNumpy():
        first[int(t)] = -1
    for t in graph.OutputsAsNumpy():
        last[int(t)] = count
    for i in range(count):
        op = graph.Operators(i)
        for t in op.OutputsAsNumpy() if op.OutputsLength() else []:
            first.setdefault(int(t), i)
            last[int(t)] = max(last.get(int(t), i), i)
        for t in op.InputsAsNumpy() if op.InputsLength() else []:
            if int(t) >= 0:
                last[int(t)] = max(last.get(int(t), i), i)
    peak = 0
    for step in range(-1, count + 1):
        live = sum(n for t, n in size.items() if t in last and first.get(t, -1) <= step <= last[t])
        peak = max(peak, live)
    return int(peak)
