"""The options object and the declared pipeline (codegen/options.py, codegen/compiler.py):
the command line and the Python API compile the same thing from the same choices, per-layer
choices reach their pass, and the JSON form reproduces the options exactly."""

import json
from pathlib import Path

import numpy as np
import pytest

from codegen.cli import _parser, options_from_args
from codegen.compiler import PIPELINE, compile_model
from codegen.errors import CompileError
from codegen.options import CompileOptions
from codegen.passes.prune import PruneOptions

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits"
MODEL, CALIB = str(EXAMPLE / "digits.onnx"), str(EXAMPLE / "calib.npz")


def test_the_pipeline_runs_in_the_declared_order():
    names = [name for name, _ in PIPELINE]
    order = ["prune", "equalize", "calibrate", "precision", "quantize", "reconstruct", "encode", "plan"]
    present = [n for n in order if n in names]
    assert [n for n in names if n in order] == present
    assert {"prune", "calibrate", "quantize", "encode", "plan"} <= set(names)


def test_the_command_line_and_the_api_build_the_same_folder():
    args = _parser().parse_args(["compile", MODEL, "--calib", CALIB, "-o", "unused", "--sparsity", "0.5",
                                 "--encoding", "sparse"])
    options = options_from_args(args)
    assert options.mode == "int8" and options.prune.sparsity == 0.5 and options.encoding == "sparse"
    from_cli = compile_model(MODEL, calib=CALIB, options=options)
    from_api = compile_model(MODEL, calib=CALIB, mode="int8", encoding="sparse", prune=PruneOptions(sparsity=0.5))
    assert from_cli.emitted.files == from_api.emitted.files


def test_per_layer_sparsity_reaches_the_pruning_pass():
    model = compile_model(MODEL, calib=CALIB, mode="int8", per_layer={"/features/features.3/Conv": {"sparsity": 0.6}})
    pruned = {layer["name"]: layer for layer in model.report["pruning"]["layers"]}
    assert pruned["/features/features.3/Conv"]["sparsity_after"] == pytest.approx(0.6, abs=0.01)
    node = next(n for n in model.float_graph.nodes if n.name == "/features/features.3/Conv")
    weights = model.float_graph.const(node.inputs[1])
    assert np.mean(weights == 0) == pytest.approx(0.6, abs=0.01)


def test_options_round_trip_through_json():
    options = CompileOptions(mode="int8", target="cortex-m4", prune=PruneOptions(sparsity=0.75, pattern="unstructured"),
                             per_layer={"fc": {"sparsity": 0.5}}, calib_samples=None)
    again = CompileOptions.from_dict(json.loads(json.dumps(options.as_dict())))
    assert again == options


@pytest.mark.parametrize("choices,message", [
    ({"mode": "int4"}, "unknown mode 'int4'"),
    ({"arena": "heap"}, "unknown arena placement 'heap'"),
    ({"float_io": True}, "float I/O wrappers apply to int8 models"),
    ({"mode": "int8", "per_layer": {"fc": {"sparsiti": 0.5}}}, "layer 'fc': unknown per-layer option sparsiti"),
])
def test_bad_options_are_one_line_errors(choices, message):
    with pytest.raises(CompileError, match=message):
        CompileOptions(**choices)
    with pytest.raises(CompileError, match="unknown option 'colour'"):
        CompileOptions.from_dict({"colour": "red"})
