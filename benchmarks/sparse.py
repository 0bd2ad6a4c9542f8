"""Sparse kernels measured: one layer as a model folder (what tests/test_sparse_kernels.py runs),
its instruction counts on a target, the fit of codegen/sparse.py's cost model, and the issue's
benchmark table (Gemm 256x256 and a 1x1 Conv 64->64 on 16x16, dense against each encoding):

    python -m benchmarks.sparse table [--targets cortex-m4 host]
    python -m benchmarks.sparse calibrate
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.icount import count_instructions as icount
from codegen.sparse import (ENCODINGS, KERNELS, SPAN_ENCODINGS, choose, conv_span, encode, encoded_bytes,
                            scratch_bytes, sparse_kernel, sparse_params, work)
from codegen.targets import load_target


@dataclass
class Layer:
    """One int8 layer as the dense kernel takes it. weight: fc [out, in]; conv [oc, ic, kh, kw]
    (groups 1); dw [channels, 1, kh, kw]. params: nn_fc_s8_params fields, or nn_conv_s8_params
    as {"g": geometry, "input_offset", "output_offset", "act_min", "act_max"}."""

    kind: str
    weight: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    params: dict

    @property
    def in_size(self) -> int:
        p = self.params
        if self.kind == "fc":
            return (p["rows"] - 1) * p["in_row_stride"] + (p["in_features"] - 1) * p["in_col_stride"] + 1
        g = p["g"]
        return g["batch"] * g["in_channels"] * g["in_h"] * g["in_w"]

    @property
    def out_size(self) -> int:
        p = self.params
        if self.kind == "fc":
            return (p["rows"] - 1) * p["out_row_stride"] + (p["out_features"] - 1) * p["out_col_stride"] + 1
        g = p["g"]
        return g["batch"] * g["out_channels"] * g["out_h"] * g["out_w"]

    def encoded_weight(self) -> np.ndarray:
        """The weight as `encode` takes it for this kind."""
        return self.weight.reshape(self.weight.shape[0], -1) if self.kind == "dw" else self.weight


def _dense_scratch(layer: Layer, features: tuple[str, ...]) -> tuple[str, int]:
    """(element type, elements) of the scratch the dense kernel is given, 0 for none
    (the rule of codegen/ops/conv.py for an out-of-place call)."""
    if layer.kind == "fc":
        return "int8_t", 0
    g = layer.params["g"]
    if layer.kind == "dw":
        size = scratch_bytes("dw", g)
        if size and "dsp" in features:  # the DSP kernel's rows: word multiples, 4 bytes longer at least
            span_w = (g["out_w"] - 1) * g["stride_w"] + (g["kernel_w"] - 1) * g["dilation_w"] + 1
            size = size // span_w * ((span_w + 7) // 4 * 4)
        return "int8_t", size
    column = g["in_channels"] * g["kernel_h"] * g["kernel_w"]
    if "dsp" not in features:
        return "int16_t", 0
    # two columns, and when K is not a multiple of 4 the weight rows copied as words
    return "int16_t", 2 * column + (g["out_channels"] * ((column + 3) // 4 * 4) // 2 if column % 4 else 0)


def layer_folder(calls: list[tuple[Layer, str]], features: tuple[str, ...] = (), name: str = "layer"
                 ) -> tuple[dict[str, str], dict]:
    """(files, api) of a folder whose `NAME_invoke(const int8_t *in, int8_t *out)` runs each
    (layer, encoding) once, in order, with the dense kernel (encoding "dense") or the sparse
    one: the inputs of the calls one after another in `in`, their outputs likewise in `out`.
    Runtime sources are chosen for the target's CPU features, as the compiler chooses them."""
    from codegen.emit.cnames import array_body, literal
    from codegen.emit.model import kernel_source
    from codegen.paths import RUNTIME_DIR

    def table(symbol: str, ctype: str, values: np.ndarray) -> str:
        flat = np.ascontiguousarray(values).reshape(-1)
        return (f"static const {ctype} {symbol}[{max(flat.size, 1)}] = {{\n    "
                f"{array_body(flat) if flat.size else '0'}\n}};")

    head = ["#include <stdint.h>", "", '#include "nn.h"', '#include "nn_sparse.h"', f'#include "{name}.h"', ""]
    body, sources, scratch = [], set(), {"int8_t": 0, "int16_t": 0}
    at_in = at_out = 0
    for i, (layer, encoding) in enumerate(calls):
        dense_fn, dense_src, _, dense_type = KERNELS[layer.kind]
        head.append(table(f"bias{i}", "int32_t", layer.bias.astype(np.int32)))
        head.append(table(f"multiplier{i}", "int32_t", layer.multiplier.astype(np.int32)))
        head.append(table(f"shift{i}", "int8_t", layer.shift.astype(np.int8)))
        if encoding == "dense":
            function, source, params_type, params = dense_fn, dense_src, dense_type, layer.params
            head.append(table(f"weight{i}", "int8_t", layer.weight.astype(np.int8)))
            args = [f"weight{i}", f"bias{i}", f"multiplier{i}", f"shift{i}"]
            if layer.kind != "fc":
                scratch_type, size = _dense_scratch(layer, features)
                scratch[scratch_type] = max(scratch[scratch_type], size)
                args.append(f"scratch_{scratch_type[:-2]}.values" if size else "0")
        else:
            function, source, params_type = sparse_kernel(layer.kind)
            params = sparse_params(layer.kind, layer.params, encoding)
            tables = encode(layer.encoded_weight(), encoding)
            for key, ctype in (("counts", "uint8_t"), ("positions", "uint8_t"), ("values", "int8_t")):
                head.append(table(f"{key}{i}", ctype, tables[key]))
            args = [f"counts{i}", f"positions{i}", f"values{i}", f"bias{i}", f"multiplier{i}", f"shift{i}"]
            if layer.kind == "dw":
                size = scratch_bytes("dw", layer.params["g"])
                scratch["int8_t"] = max(scratch["int8_t"], size)
                args.append("scratch_int8.values" if size else "0")
        sources.add(source)
        head.append(f"static const {params_type} params{i} = {literal(params)};")
        body.append(f"    {function}(&params{i}, in + {at_in}, {', '.join(args)}, out + {at_out});")
        at_in += layer.in_size
        at_out += layer.out_size
    for ctype, size in scratch.items():  # word-aligned, as the arena places scratch (the DSP kernels load words)
        if size:
            head.append(f"static union {{ {ctype} values[{size}]; int32_t align_int32; }} scratch_{ctype[:-2]};")
    text = "\n".join(head + ["", f"int {name}_invoke(const int8_t *in, int8_t *out)", "{", *body,
                              "    return 0;", "}", ""])
    files = {h.name: h.read_text() for h in sorted((RUNTIME_DIR / "include").glob("*.h"))}
    for source in sorted(sources):
        files[Path(source).name] = kernel_source(source, features).read_text()
    files[f"{name}.h"] = (f"#ifndef {name.upper()}_H\n#define {name.upper()}_H\n#include <stdint.h>\n"
                          f"int {name}_invoke(const int8_t *in, int8_t *out);\n#endif\n")
    files[f"{name}.c"] = text
    io = lambda n, size: {"name": n, "dtype": "int8", "ctype": "int8_t", "size": size, "shape": [size]}  # noqa: E731
    api = {"invoke": f"{name}_invoke", "inputs": [io("in", at_in)], "outputs": [io("out", at_out)]}
    return files, api


# ---- measurement: benchmark layers, instruction counts, calibration and the benchmark table ----

def _geometry(x_shape, out_channels, kernel, stride, pads, dilation, depthwise) -> dict:
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (pt, pl, pb, pr), (dh, dw) = kernel, stride, pads, dilation
    return dict(batch=n, in_channels=c, in_h=h, in_w=w, out_channels=c if depthwise else out_channels,
                out_h=(h + pt + pb - (kh - 1) * dh - 1) // sh + 1, out_w=(w + pl + pr - (kw - 1) * dw - 1) // sw + 1,
                groups=c if depthwise else 1, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw,
                dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl)


def bench_layer(kind: str, zeros: float, seed: int = 0, rows: int = 1, in_features: int = 256,
                out_features: int = 256, x_shape=(1, 64, 16, 16), out_channels: int = 64, kernel=(1, 1),
                stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)) -> tuple[Layer, np.ndarray]:
    """A seeded layer whose weights have the given sparsity, and an input for it."""
    rng = np.random.default_rng(seed)
    if kind == "fc":
        shape = (out_features, in_features)
        params = dict(rows=rows, in_features=in_features, out_features=out_features, in_row_stride=in_features,
                      in_col_stride=1, out_row_stride=out_features, out_col_stride=1)
        size = rows * in_features
    else:
        g = _geometry(x_shape, out_channels, kernel, stride, pads, dilation, kind == "dw")
        shape = (g["out_channels"], 1 if kind == "dw" else g["in_channels"], *kernel)
        params = {"g": g, "input_offset": 5}
        size = int(np.prod(x_shape))
    w = rng.integers(1, 128, shape).astype(np.int8) * rng.choice(np.array([-1, 1], np.int8), shape)
    w[rng.random(shape) < zeros] = 0
    params.update(output_offset=-3, act_min=-128, act_max=127)
    channels = shape[0]
    layer = Layer(kind, w, rng.integers(-2000, 2000, channels).astype(np.int32),
                  np.full(channels, 1518500250, np.int32), np.full(channels, -9, np.int8), params)
    return layer, rng.integers(-128, 128, size).astype(np.int8)


def count_instructions(layer: Layer, x: np.ndarray, encoding: str, target: str) -> int:
    """Instructions of one call of the layer's dense or sparse kernel on the target (emulated
    Cortex-M or callgrind on the host: benchmarks/icount.py)."""
    spec = load_target(target)
    features = tuple(sorted(k for k, on in spec.get("features", {}).items() if on))
    files, api = layer_folder([(layer, encoding)], features)
    return icount(files, api, {"in": x}, target)


def layer_bytes(layer: Layer, encoding: str) -> int:
    """Weight bytes of the layer, dense or encoded."""
    return layer.weight.size if encoding == "dense" else encoded_bytes(layer.encoded_weight(), encoding)


def _layer_work(layer: Layer, encoding: str) -> tuple[float, ...]:
    geometry = layer.params if layer.kind == "fc" else layer.params["g"]
    return work(layer.encoded_weight(), layer.kind, encoding, geometry)


# The layers whose counts COSTS is fitted to, per kind.
CALIBRATION = {
    "fc": [dict(in_features=256, out_features=256), dict(in_features=64, out_features=256),
           dict(in_features=200, out_features=128), dict(in_features=1000, out_features=32, rows=2)],
    "conv": [dict(x_shape=(1, 64, 16, 16), out_channels=64),
             dict(x_shape=(1, 32, 18, 18), out_channels=32, kernel=(3, 3)),
             dict(x_shape=(1, 32, 16, 16), out_channels=32, kernel=(3, 3), pads=(1, 1, 1, 1)),
             dict(x_shape=(1, 16, 10, 10), out_channels=8, kernel=(3, 3), pads=(1, 1, 1, 1))],
    "dw": [dict(x_shape=(1, 64, 18, 18), kernel=(3, 3)),
           dict(x_shape=(1, 64, 16, 16), kernel=(3, 3), pads=(1, 1, 1, 1)),
           dict(x_shape=(1, 32, 10, 10), kernel=(3, 3), pads=(1, 1, 1, 1)),
           dict(x_shape=(1, 32, 20, 20), kernel=(5, 5)), dict(x_shape=(1, 32, 22, 22), kernel=(7, 7)),
           dict(x_shape=(1, 16, 12, 12), kernel=(5, 5), pads=(2, 2, 2, 2))],
}
CALIBRATION_SPARSITIES = (0.5, 0.75, 0.9, 1.0)
# More for the sparse convolution: small ones like the example's, where segments of several taps
# matter most.
CALIBRATION_SPARSE = {"conv": [dict(x_shape=(1, 8, 8, 8), out_channels=16, kernel=(3, 3), pads=(1, 1, 1, 1)),
                               dict(x_shape=(1, 4, 12, 12), out_channels=8, kernel=(3, 3))]}


def calibrate(targets=("cortex-m4", "cortex-m3")) -> dict:
    """Measure the calibration layers on each target and fit the constants of COSTS: per target
    class ("dsp" from the Cortex-M4 build, "base" from the Cortex-M3 one), per kind and encoding,
    the instructions per COST_TERMS item (dense: per MAC and per output). The dense depthwise
    kernel has its own loop for 3x3 windows: "dense3x3" is its cost per output."""
    fitted: dict = {}

    def measure(kind, encoding, shapes, sparsities, target):
        rows, counts = [], []
        for shape in shapes:
            for s in sparsities:
                layer, x = bench_layer(kind, s, **shape)
                rows.append(_layer_work(layer, encoding))
                counts.append(count_instructions(layer, x, encoding, target))
        return np.array(rows), np.array(counts, float)

    for target in targets:
        klass = "dsp" if target == "cortex-m4" else "base"
        for kind, shapes in CALIBRATION.items():
            costs = fitted.setdefault(klass, {}).setdefault(kind, {})
            sparse_shapes = shapes + CALIBRATION_SPARSE.get(kind, [])
            for encoding in ("dense", *ENCODINGS, *(SPAN_ENCODINGS if kind == "conv" else ())):
                # a sparse convolution's rows cost nothing measurable beyond their blocks (and the
                # term would only trade places with the per-output one)
                fits = [(encoding, shapes, ())] if encoding == "dense" else \
                    [(encoding, sparse_shapes, (3,) if kind == "conv" else ())]
                if encoding in SPAN_ENCODINGS:
                    fits = [(encoding, [s for s in sparse_shapes
                                        if conv_span(s["x_shape"][1], int(np.prod(s.get("kernel", (1, 1))))) > 1], (3,))]
                if encoding == "dense" and kind == "dw":  # per MAC and per output are one term at 3x3
                    fits = [("dense3x3", [s for s in shapes if s["kernel"] == (3, 3)], (0,)),
                            ("dense", [s for s in shapes if s["kernel"] != (3, 3)], ())]
                for key, use, dropped in fits:
                    a, n = measure(kind, encoding, use, (0.75,) if encoding == "dense" else CALIBRATION_SPARSITIES,
                                   target)
                    used = [i for i in range(a.shape[1]) if a[:, i].any() and i not in dropped]
                    coef = np.linalg.lstsq(a[:, used] / n[:, None], np.ones(len(n)), rcond=None)[0]  # relative
                    full = [0.0] * a.shape[1]
                    for i, c in zip(used, coef):
                        full[i] = round(float(c), 2)
                    costs[key] = tuple(full)
                    worst = float(np.abs(a @ np.array(full) / n - 1).max())
                    print(f"{target} {kind} {key}: {tuple(full)} (worst fit {worst:.1%})", flush=True)
    return fitted


BENCHMARKS = {  # the issue's benchmark layers
    "Gemm 256x256": ("fc", dict(in_features=256, out_features=256)),
    "Conv 1x1 64->64 16x16": ("conv", dict(x_shape=(1, 64, 16, 16), out_channels=64)),
}


def table(targets=("cortex-m4", "host"), sparsities=(0.0, 0.5, 0.75, 0.9)) -> list[dict]:
    """Weight bytes and instructions per call of the benchmark layers, dense against each
    encoding, with the cost model's choice for the target; prints a markdown table."""
    rows = []
    print("| layer | target | sparsity | dense bytes | dense instructions | "
          + " | ".join(f"{e} bytes | {e} instructions" for e in ENCODINGS) + " | chosen |")
    print("|" + "---|" * (5 + 2 * len(ENCODINGS) + 1))
    for target in targets:
        features = tuple(sorted(k for k, on in load_target(target).get("features", {}).items() if on))
        for name, (kind, shape) in BENCHMARKS.items():
            for s in sparsities:
                layer, x = bench_layer(kind, s, **shape)
                row = {"layer": name, "target": target, "sparsity": s}
                for encoding in ("dense", *ENCODINGS):
                    row[encoding] = (layer_bytes(layer, encoding), count_instructions(layer, x, encoding, target))
                geometry = layer.params if kind == "fc" else layer.params["g"]
                row["chosen"] = choose(layer.encoded_weight(), kind, features, geometry).encoding
                rows.append(row)
                (db, di) = row["dense"]
                cells = " | ".join(f"{b} ({b / db:.2f}x) | {i} ({i / di:.2f}x)" for b, i in
                                   (row[e] for e in ENCODINGS))
                print(f"| {name} | {target} | {s:.0%} | {db} | {di} | {cells} | {row['chosen']} |", flush=True)
    return rows


def main(argv=None) -> int:
    import argparse
    import pprint

    parser = argparse.ArgumentParser(prog="python -m benchmarks.sparse",
                                     description="measure the sparse kernels (needs the Cortex-M toolchain, QEMU and valgrind)")
    parser.add_argument("what", choices=("table", "calibrate"))
    parser.add_argument("--targets", nargs="+")
    args = parser.parse_args(argv)
    if args.what == "table":
        table(*([tuple(args.targets)] if args.targets else []))
    else:
        pprint.pprint(calibrate(*([tuple(args.targets)] if args.targets else [])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
