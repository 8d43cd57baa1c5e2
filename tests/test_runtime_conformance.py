"""ONNX's own backend node test cases (onnx.backend.test.case.node) for every operator the runtime
supports, run through hepnn.runtime. Run this file as a script for the per-op pass counts:
``PYTHONPATH=python python tests/test_runtime_conformance.py``."""
import collections
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, numpy_helper  # noqa: E402

import hepnn.runtime as rt  # noqa: E402

SUPPORTED_OPS = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh",
    "Softplus", "Gelu", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Clip", "Where", "Equal", "Less", "Greater",
    "Not", "And", "Cast", "Softmax", "LogSoftmax", "Identity", "Dropout", "Flatten", "Reshape", "Constant",
    "ConstantOfShape", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Slice", "Gather", "GatherElements",
    "Expand", "Shape", "Range", "Tile", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ArgMax", "TopK"}
SUPPORTED_OPS |= {"GRU", "LSTM", "Mod"}

# Inputs that define output shapes. The runtime plans memory before it sees input data, so these
# must be known then (constants, or computed from shapes); the cases feed them as graph inputs, so
# they become initializers holding the case's value (the same graph with that input fixed).
SHAPE_INPUTS = {"Reshape": [1], "Expand": [1], "Tile": [1], "Slice": [1, 2, 3, 4], "Squeeze": [1],
                "Unsqueeze": [1], "ConstantOfShape": [0], "Range": [0, 1, 2], "TopK": [1], "ReduceSum": [1],
                "ReduceMean": [1], "ReduceMax": [1], "ReduceMin": [1]}

RUNTIME_TYPES = {TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL}


def _conformance_cases():
    try:
        from onnx.backend.test.case.node import collect_testcases
    except ImportError:  # pragma: no cover
        return []
    with warnings.catch_warnings():  # generating other ops' cases warns about overflowing casts
        warnings.simplefilter("ignore")
        all_cases = collect_testcases(None)
    return [c for c in all_cases
            if len({n.op_type for n in c.model.graph.node}) == 1 and c.model.graph.node[0].op_type in SUPPORTED_OPS]


CONFORMANCE = _conformance_cases()


def _constant_shapes(case):
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    g = model.graph
    node = g.node[0]
    fixed = [node.input[i] for i in SHAPE_INPUTS.get(node.op_type, []) if i < len(node.input) and node.input[i]]
    names = [vi.name for vi in g.input]
    fixed = [n for n in fixed if n in names]
    if not fixed or len(case.data_sets) != 1:
        return model, case.data_sets
    inputs, outputs = case.data_sets[0]
    keep = []
    for k, name in enumerate(names):
        if name in fixed:
            g.initializer.append(numpy_helper.from_array(np.asarray(inputs[k]), name))
        else:
            keep.append(k)
    for k in reversed(range(len(names))):
        if names[k] in fixed:
            del g.input[k]
    return model, [([inputs[k] for k in keep], outputs)]


def _case_opset(case):
    return max([o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")] or [0])


def _same_schema_at_21(case):
    """A case made at an old opset still tests opset 13-21 when its op has not changed since
    (And-7, Not-1 ...): the schema in force at the case's opset is the one in force at 21."""
    op = case.model.graph.node[0].op_type
    try:
        return (onnx.defs.get_schema(op, _case_opset(case)).since_version ==
                onnx.defs.get_schema(op, 21).since_version)
    except Exception:  # noqa: BLE001
        return False


def _exclusion(case):
    """Deliberate exclusions, each with its reason:
    - element types other than float32, int64 and bool (float16, double, int8/16/32, uint*,
      string, bfloat16, float8, int4): the runtime computes in these three only;
    - opsets before 13 (the runtime reads 13 to 21), unless the op is unchanged since (then the
      case runs at opset 21);
    - training-mode Dropout and its mask output (inference only);
    - LSTM peepholes (input P), refused at load: test_lstm_with_peepholes, whose int32
      sequence_lens graph input already excludes it;
    - sequence and optional types."""
    g = _constant_shapes(case)[0].graph
    for vi in list(g.input) + list(g.output):
        if not vi.type.HasField("tensor_type"):
            return "sequence/optional type"
        if vi.type.tensor_type.elem_type not in RUNTIME_TYPES:
            return "element type " + TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
    for node in g.node:
        for a in node.attribute:
            if a.name in ("to", "value") and a.type == onnx.AttributeProto.INT and a.i not in RUNTIME_TYPES:
                return "element type " + TensorProto.DataType.Name(a.i)
            if a.name == "value" and a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in RUNTIME_TYPES:
                return "element type " + TensorProto.DataType.Name(a.t.data_type)
    for t in g.initializer:
        if t.data_type not in RUNTIME_TYPES:
            return "element type " + TensorProto.DataType.Name(t.data_type)
    if _case_opset(case) < 13 and not _same_schema_at_21(case):
        return "opset < 13"
    if "training" in case.name or "mask" in case.name:
        return "training-mode Dropout"
    return None


def run_case(case):
    model, data_sets = _constant_shapes(case)
    for o in model.opset_import:
        # onnx stamps its newest opset (22-25); from 21 on, these ops' versions only added element
        # types (bfloat16, float8, int4 ...), so the float32/int64/bool semantics are opset 21's.
        if o.domain in ("", "ai.onnx") and (o.version > 21 or o.version < 13):
            o.version = 21
    s = rt.Session(model.SerializeToString())
    for inputs, outputs in data_sets:
        got = s.run(dict(zip(s.input_names, inputs)))
        assert len(got) == len(outputs)
        for g, w in zip(got, outputs):
            w = np.asarray(w)
            assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
            if w.dtype == np.float32:
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("case", CONFORMANCE, ids=[c.name for c in CONFORMANCE])
def test_onnx_node_conformance(case):
    why = _exclusion(case)
    if why:
        pytest.skip(why)
    run_case(case)


def test_every_supported_op_has_cases():
    ops = {c.model.graph.node[0].op_type for c in CONFORMANCE if not _exclusion(c)}
    # onnx has no float32/int64/bool case for Cast (all its cases involve float16, double, float8,
    # int4, string ...) nor for Equal (int32, string ...): tests/test_runtime_ops.py covers both.
    assert SUPPORTED_OPS - ops <= {"Cast", "Equal"}, SUPPORTED_OPS - ops


if __name__ == "__main__":
    counts = collections.defaultdict(lambda: [0, 0, 0])  # passed, failed, excluded
    reasons = collections.defaultdict(collections.Counter)
    for c in CONFORMANCE:
        op = c.model.graph.node[0].op_type
        why = _exclusion(c)
        if why:
            counts[op][2] += 1
            reasons[op][why] += 1
            continue
        try:
            run_case(c)
            counts[op][0] += 1
        except Exception as e:  # noqa: BLE001
            counts[op][1] += 1
            print("FAIL", c.name, str(e).splitlines()[0][:200])
    print(f"{'op':18s} pass fail excluded")
    for op in sorted(counts):
        p, f, x = counts[op]
        print(f"{op:18s} {p:4d} {f:4d} {x:4d}  {dict(reasons[op])}")
    print("total", sum(v[0] for v in counts.values()), "passed,", sum(v[1] for v in counts.values()), "failed")
