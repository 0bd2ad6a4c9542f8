"""onnx2mcu compile | verify | inspect.

Errors the user can fix print one line and exit with status 2; `verify` exits with 1 when
the generated C and the reference differ.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings

from codegen import __version__
from codegen.errors import CompileError


AUTO_SQNR_HELP = ("--precision auto: the output SQNR in dB (on the calibration samples) to reach "
                  "(default: 1 dB below all layers in int16); verify's --min-sqnr is a threshold instead")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="onnx2mcu", description="Compile ONNX models to C99 for microcontrollers.")
    p.add_argument("--version", action="version", version=f"onnx2mcu {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, several=False):
        if several:
            sp.add_argument("model", nargs="+", help="the .onnx file; several: one folder for all, the runtime once")
        else:
            sp.add_argument("model", help="the .onnx file")
        sp.add_argument("--name", help="C name prefix of the model (default: the file's stem); of several "
                                       "models: the folder's prefix (default: the -o folder's name)")
        sp.add_argument("--target", default="host", help="target from targets/*.toml (default: host)")
        sp.add_argument("--flash-budget", type=int, help="flash bytes allowed (default: the target's)")
        sp.add_argument("--ram-budget", type=int, help="RAM bytes allowed (default: the target's)")
        sp.add_argument("--float", action="store_true", help="float32 weights and activations (default: int8)")
        sp.add_argument("--calib", action="append",
                        help=".npz of calibration inputs for int8 (optional for a QDQ model); several models: "
                             "once per model, in order")
        sp.add_argument("--calib-samples", type=int, default=1000, metavar="N",
                        help="calibrate on a seeded subset of at most N samples of --calib (default 1000)")
        sp.add_argument("--float-io", action="store_true",
                        help="int8 only: also write NAME_invoke_float, taking and returning float tensors")
        sp.add_argument("--precision", choices=("int8", "int16", "auto"), default="int8",
                        help="activations of the integer layers: int8, or int16 with int8 weights (TFLite's 16x8 "
                             "scheme) where the operator has int16 kernels, or auto: int16 for the layers whose "
                             "int8 output costs the most SQNR, until --min-sqnr (compile, inspect) or "
                             "--ram-budget (the arena) (default int8)")
        q = sp.add_argument_group("calibration")
        q.add_argument("--calibration", choices=("minmax", "percentile", "mse", "entropy", "auto"), default="auto",
                       help="activation ranges: min/max, percentiles, least quantization MSE, TensorRT's KL "
                            "divergence, or per tensor the one its consumers' outputs prefer (auto, the default)")
        q.add_argument("--percentile", type=float, default=99.99, metavar="P",
                       help="--calibration percentile: the (100-P)th and Pth percentiles (default 99.99)")
        q.add_argument("--weight-clipping", choices=("none", "mse"), default="none",
                       help="per-channel weight scales: max|w| / 127 (none, default) or the least-MSE clipping")
        q.add_argument("--reconstruct", choices=("auto", "none", "bias", "adaround", "full"), default="auto",
                       help="int8 layers fitted to the float model's outputs, layer by layer: bias correction, "
                            "AdaRound's rounding and bias correction, or also a least-squares re-fit of "
                            "pruned layers (full); auto (default): full for a pruned model, else bias")
        q.add_argument("--no-equalize", action="store_true",
                       help="no cross-layer equalization (default: on, each pair of layers kept where it "
                            "raises the int8 SQNR on the calibration samples)")
        g = sp.add_argument_group("pruning and sparse weights")
        g.add_argument("--sparsity", type=float, metavar="S",
                       help="prune this fraction of each layer's weights (structured: of its channels)")
        g.add_argument("--prune-scope", choices=("layer", "global"), default="layer",
                       help="unstructured: one threshold per layer (default) or across all pruned layers")
        g.add_argument("--prune", default="unstructured", metavar="PATTERN",
                       help="unstructured (default), structured (whole channels; default S 0.5) or N:M (e.g. 2:4)")
        g.add_argument("--prune-criterion", choices=("activation", "magnitude"), default="activation",
                       help="unstructured and N:M: drop the weights of least |w| x RMS of their input on the "
                            "calibration set (default), or of least |w|")
        g.add_argument("--sparsity-per-layer", metavar="NAME=S,...",
                       help="per-layer fractions (ONNX node names); these layers are pruned even if excluded by default")
        g.add_argument("--no-bias-correction", action="store_true",
                       help="do not re-centre pruned layers' mean error on the calibration set")
        g.add_argument("--encoding", choices=("auto", "dense", "sparse"), default="auto",
                       help="int8 weight tables: chosen per layer by a cost model (default), always dense, "
                            "or sparse wherever a weight is zero")

    c = sub.add_parser("compile", help="write the C folder for a model")
    common(c, several=True)
    c.add_argument("-o", "--output", required=True, help="output folder (replaced atomically)")
    c.add_argument("--min-sqnr", type=float, metavar="DB", help=AUTO_SQNR_HELP)
    c.add_argument("--arena", choices=("static", "extern"), default="static",
                   help="the activation arena: static in NAME.c (default), or extern: the caller defines "
                        "int32_t NAME_arena[NAME_ARENA_WORDS]")
    c.add_argument("--shared-arena", action="store_true",
                   help="several models: one arena for all (they must not run at the same time)")
    c.add_argument("--single-header", action="store_true",
                   help="write one stb-style NAME.h (define NAME_IMPLEMENTATION in one .c file)")

    v = sub.add_parser("verify", help="compile, run the C on the host and compare with the references")
    common(v)
    v.add_argument("--data", help=".npz with one array per input (and optional labels y); default: random inputs")
    v.add_argument("--samples", type=int, default=8, help="random samples when --data is not given (default 8)")
    v.add_argument("--json", help="write the results as JSON to this file")
    t = v.add_argument_group("thresholds (verify exits with 1 when one is missed)")
    t.add_argument("--min-accuracy", type=float, metavar="A",
                   help="the C's accuracy on the labels of --data, a fraction (e.g. 0.95)")
    t.add_argument("--max-drop", type=float, metavar="D",
                   help="the float model's accuracy minus the C's, a fraction (e.g. 0.02 for 2 points)")
    t.add_argument("--min-sqnr", type=float, metavar="DB", help="SQNR of the C's outputs against the ONNX model")

    i = sub.add_parser("inspect", help="print the per-layer table of a model")
    common(i)
    i.add_argument("--min-sqnr", type=float, metavar="DB", help=AUTO_SQNR_HELP)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # NumPy's RuntimeWarnings (overflow, invalid value) never reach the terminal: what they
        # reveal that matters (NaN or Inf weights and activations) is a CompileError of its own.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return {"compile": _compile, "verify": _verify, "inspect": _inspect}[args.command](args)
            finally:
                if os.environ.get("ONNX2MCU_DEBUG"):
                    for w in caught:
                        print(warnings.formatwarning(w.message, w.category, w.filename, w.lineno),
                              end="", file=sys.stderr)
    except CompileError as e:
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(e))  # one line, whatever names it holds
        print(f"onnx2mcu: error: {text}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # an internal error: one line unless asked for the traceback
        if os.environ.get("ONNX2MCU_DEBUG"):
            traceback.print_exc()
        print(f"onnx2mcu: internal error: {type(e).__name__}: {e} (set ONNX2MCU_DEBUG=1 for details)",
              file=sys.stderr)
        return 3


def options_from_args(args):
    """The CompileOptions (codegen/options.py) the command line asks for."""
    from codegen.options import CompileOptions
    from codegen.passes.prune import PruneOptions, parse_per_layer
    from codegen.targets import load_target

    load_target(args.target)
    if args.float and args.float_io:
        raise CompileError("--float-io applies to int8 models; drop --float")
    # compile and inspect: --min-sqnr is --precision auto's target (verify's is a threshold)
    auto_target = args.min_sqnr if args.command in ("compile", "inspect") else None
    if auto_target is not None and args.precision != "auto":
        raise CompileError("--min-sqnr of compile and inspect is the target of --precision auto; add it")
    auto_ram = args.ram_budget if args.precision == "auto" else None
    prune = PruneOptions(sparsity=args.sparsity, scope=args.prune_scope, pattern=args.prune,
                         per_layer=parse_per_layer(args.sparsity_per_layer),
                         bias_correction=not args.no_bias_correction, criterion=args.prune_criterion)
    return CompileOptions(mode="float32" if args.float else "int8", float_io=args.float_io, target=args.target,
                          prune=prune, encoding=args.encoding, calib_samples=args.calib_samples,
                          arena=getattr(args, "arena", "static"), flash_budget=args.flash_budget,
                          precision=args.precision, calibration=args.calibration, percentile=args.percentile,
                          weight_clipping=args.weight_clipping, reconstruct=args.reconstruct,
                          equalize=not args.no_equalize, min_sqnr=auto_target, ram_budget=auto_ram)


def _compiled(args):
    from codegen.compiler import check_budget, compile_model

    options = options_from_args(args)
    if args.calib and len(args.calib) > 1:
        raise CompileError(f"--calib given {len(args.calib)} times for one model")
    compiled = compile_model(args.model, args.name, measure=True, calib=args.calib[0] if args.calib else None,
                             options=options)
    check_budget(compiled.report, args.target, args.flash_budget, args.ram_budget)
    return compiled


def _compile_several(args) -> int:
    """Several models into one folder (codegen/bundle.py)."""
    from codegen.bundle import bundle_name, compile_bundle
    from codegen.compiler import check_budget, write_folder

    if args.single_header:
        raise CompileError("--single-header takes one model; compile the models one by one, or drop it")
    options = options_from_args(args)
    emitted, _ = compile_bundle(args.model, bundle_name(args.output, args.name), args.calib,
                                shared_arena=args.shared_arena, arena=options.arena, target=options.target,
                                options=options)
    check_budget(emitted.report, args.target, args.flash_budget, args.ram_budget)
    out = write_folder(emitted, args.output)
    r = emitted.report
    print(f"{out}: {r['models'][0]['options']['mode']}, {len(r['models'])} models, {len(emitted.files) + 1} files; "
          f"flash {r['flash_bytes']} B, RAM {r['ram_bytes']} B ({r['sizes']['target']} build), "
          f"arena {r['arena_bytes']} B{' shared' if args.shared_arena else ''}; saved against one folder per "
          f"model: flash {r['saved']['flash_bytes']} B, RAM {r['saved']['ram_bytes']} B")
    return 0


def _compile(args) -> int:
    from codegen.compiler import write_folder

    if len(args.model) > 1:
        return _compile_several(args)
    if args.shared_arena:
        raise CompileError("--shared-arena needs two or more models")
    args.model = args.model[0]
    compiled = _compiled(args)
    emitted = compiled.emitted
    if args.single_header:
        from codegen.emit import EmittedModel
        from codegen.emit.model import single_header

        header = f"{compiled.report['model']}.h"
        emitted = EmittedModel({header: single_header(emitted, compiled.report["model"])}, emitted.report)
    out = write_folder(emitted, args.output)
    r = compiled.report
    written = len(emitted.files) + 1  # report.json too: at least 2, "1 files" cannot happen
    print(f"{out}: {compiled.mode}, {written} files; flash {r['flash_bytes']} B, "
          f"RAM {r['ram_bytes']} B ({r['sizes']['target']} build), "
          f"weights {r['weights_bytes']} B, "
          f"arena {r['arena_bytes']} B (lower bound {r['arena_lower_bound']} B), {r['macs']} MACs")
    return 0


def _verify(args) -> int:
    from codegen import verify
    from codegen.samples import check_index_bounds, load_samples, random_samples

    thresholds = verify.Thresholds(args.min_accuracy, args.max_drop, args.min_sqnr)
    if thresholds.need_labels and not args.data:
        raise CompileError("--min-accuracy and --max-drop need labels: a --data file with an array 'y'")
    compiled = _compiled(args)
    if args.data:
        from codegen.passes.calibrate import check_samples

        samples, labels = load_samples(args.data, compiled.graph)
        check_samples(samples, args.data)  # NaN or Inf would make every figure NaN
        check_index_bounds(samples, compiled.graph, args.data)
    else:
        samples, labels = random_samples(compiled.graph, args.samples), None
    if thresholds.need_labels and labels is None:
        raise CompileError(f"{args.data}: holds no labels 'y'; --min-accuracy and --max-drop need them")
    result = verify.verify(compiled, samples, labels, target=args.target, thresholds=thresholds)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    verdict = "PASS" if result["passed"] else "FAIL"
    line = (f"{verdict}: {result['mode']}, {result['samples']} samples; C vs reference "
            f"{'equal' if result['bit_exact'] else 'DIFFERENT'}; vs ONNX: max abs diff "
            f"{result['max_abs_diff']:.3g}, SQNR {result['sqnr_db']:.1f} dB")
    if result["sqnr_db_pruned"] is not None:
        line += f" (against the pruned float model {result['sqnr_db_pruned']:.1f} dB)"
    line += f", top-1 agreement {100 * result['float_top1_agreement']:.1f}%"
    if result["accuracy_float"] is not None:
        line += f", accuracy float {100 * result['accuracy_float']:.1f}%"
    if result["accuracy_pruned"] is not None:
        line += f", pruned {100 * result['accuracy_pruned']:.1f}%"
    if result["accuracy_quantized"] is not None:
        line += f", int8 {100 * result['accuracy_quantized']:.1f}%"
    if "target" in result:
        line += f"; on {result['target']}: {'identical to the host' if result['target_equal'] else 'DIFFERENT'}"
    if result["reference_max_rel_diff"] is not None:
        line += (f"; NumPy reference vs onnx.reference: max rel diff {result['reference_max_rel_diff']:.3g}"
                 f"{'' if result['reference_agrees'] else ' DIFFERENT'}")
        if result["reference_ties"]:
            line += f" ({result['reference_ties']} rounding ties taken from onnx.reference)"
    print(line)
    for why in verify.failures(result):
        print(f"FAIL: {why}")
    return 0 if result["passed"] else 1


def _inspect(args) -> int:
    compiled = _compiled(args)
    print(format_table(compiled.report))
    return 0


def format_table(report: dict) -> str:
    int8 = report["options"]["mode"] == "int8"
    rows = [("#", "layer", "op", "output", "params", "MACs", "weights B", "output at")
            + (("SQNR dB", "precision", "zeros", "encoding") if int8 else ())]
    notes = []
    for layer in report["layers"]:
        sqnr = layer.get("sqnr_db", "-")  # absent: no calibration data to measure it on
        sqnr = "exact" if sqnr is None else sqnr if isinstance(sqnr, str) else f"{sqnr:.1f}"
        zeros = f"{100 * layer['sparsity']:.0f}%" if "sparsity" in layer else ""
        rows.append((str(layer["index"]), layer["name"][:32], layer["op"], "x".join(map(str, layer["output_shape"])),
                     str(layer["params"]), str(layer["macs"]), str(layer["weights_bytes"]), layer["output_location"])
                    + ((sqnr, layer.get("precision", ""), zeros, layer.get("encoding", "")) if int8 else ()))
        if "encoding" in layer:
            notes.append(f"[{layer['index']}] {layer['name']}: weights {layer['weight_bytes_encoded']} B "
                         f"(dense {layer['weight_bytes_dense']} B); {layer['encoding_reason']}")
    rows.append(("", "total", "", "", str(report["params"]), str(report["macs"]), str(report["weights_bytes"]),
                 f"arena {report['arena_bytes']} B (bound {report['arena_lower_bound']})") + (("", "", "", "") if int8 else ()))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if k < 3 else c.rjust(w) for k, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    pruning = report.get("pruning")
    if pruning:
        what = ", ".join(f"{k} {v}" for k, v in pruning.items() if k not in ("layers", "channel_groups"))
        lines += ["", f"pruning: {what}"]
        for layer in pruning["layers"]:
            after = layer.get("sparsity_after")
            state = "removed" if after is None else f"{100 * layer['sparsity_before']:.0f}% -> {100 * after:.0f}% zeros"
            why = f"; kept: {layer['kept_because']}" if "kept_because" in layer else ""
            fixed = "; bias corrected" if layer["bias_corrected"] else ""
            lines.append(f"  {layer['name']}: {state}{why}{fixed}")
        for group in pruning.get("channel_groups", []):
            why = f" ({group['reason']})" if group["reason"] else ""
            lines.append(f"  channels of {', '.join(group['layers'])}: {group['channels']} -> {group['kept']}{why}")
    if notes:
        lines += ["", "weight encodings:"] + [f"  {n}" for n in notes]
    lines += calibration_lines(report)
    lines += precision_lines(report)
    return "\n".join(lines)


def precision_lines(report: dict) -> list[str]:
    """The activation precisions when a layer asked for int16: the layers that stayed int8 and
    why, and for --precision auto its measurements and choices."""
    summary = report.get("precision")
    if not summary or (summary["default"] == "int8" and not summary["int16"] and not summary["kept_int8"]):
        return []
    lines = ["", f"precision: {summary['default']}; int16 layers: {len(summary['int16'])}"]
    lines += [f"  {k['node']} ({k['op']}): int8, {k['reason']}" for k in summary["kept_int8"]]
    found = summary.get("auto")
    if found:
        reached = "reached" if found["reached"] else "not reached"
        lines.append(f"  auto on {found['samples']} calibration samples: SQNR int8 {found['sqnr_db_int8']} dB, "
                     f"int16 {found['sqnr_db_int16']} dB, chosen {found['sqnr_db']} dB (target "
                     f"{found['target_sqnr_db']} dB, {reached}) with {found['promoted']} of "
                     f"{found['candidates']} layers in int16")
        for name, loss in sorted(found["sensitivity_db"].items(), key=lambda kv: -(kv[1] or 0)):
            lines.append(f"    {name}: {loss} dB lost in int8")
    return lines


def calibration_lines(report: dict) -> list[str]:
    """Per layer, the calibration method of its output, the range it chose and the fraction of
    the calibration values outside it (layers that keep their input's parameters are left out)."""
    calibration = report.get("calibration", {})
    if "method" not in calibration:
        return []
    method = calibration["method"] + (f" {calibration['percentile']:g}" if calibration["method"] == "percentile" else "")
    lines = ["", f"calibration: {method}; weight clipping: {calibration['weight_clipping']}"]
    for layer in report["layers"]:
        c = layer.get("calibration")
        if c is not None:
            lines.append(f"  [{layer['index']}] {layer['name']}: {c['method']} [{c['lo']:.4g}, {c['hi']:.4g}], "
                         f"{100 * c['clipped']:.3g}% clipped")
    return lines
