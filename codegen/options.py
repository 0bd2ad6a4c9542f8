"""What to do to a model: one options object for the whole pipeline (codegen/compiler.py).

The command line fills it (cli.options_from_args), the Python API takes it, and every pass
reads its own fields. `per_layer` says what to do to one layer, by ONNX node name:
{"conv1": {"sparsity": 0.5}}; a per-layer value wins over the model-wide one. `as_dict`
gives the JSON form that report.json records; `from_dict` reads it back, so that a
configuration can be reproduced exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from codegen.errors import CompileError
from codegen.passes import calibrate
from codegen.passes.prune import PruneOptions
from codegen.passes.reconstruct import CHOICES as RECONSTRUCTS
from codegen.samples import DEFAULT_CALIB_SAMPLES

MODES = ("int8", "float32")
ARENAS = ("static", "extern")
ENCODINGS = ("auto", "dense", "sparse")
LAYER_KEYS = ("sparsity", "precision", "calibration", "weight_clipping", "equalize")  # what per_layer may say of a layer
WEIGHT_CLIPPINGS = ("none", "mse")  # per-channel weight scales: max|w| / 127, or the MSE-optimal ones
PRECISIONS = ("int8", "int16", "auto")  # activations (codegen/passes/precision.py); auto: per layer


@dataclass
class CompileOptions:
    mode: str = "float32"  # "int8" needs calibration samples (or a QDQ model)
    target: str = "host"
    float_io: bool = False  # int8: also NAME_invoke_float
    arena: str = "static"  # "extern": the caller defines NAME_arena
    encoding: str = "auto"  # int8 weight tables: per layer by cost, or all dense, or all sparse
    calib_samples: int | None = DEFAULT_CALIB_SAMPLES  # a seeded subset of at most this many calibration samples
    flash_budget: int | None = None  # default: the target's
    prune: PruneOptions | None = None
    precision: str = "int8"  # int8 activations: int8 or int16 (TFLite's 16x8) for every layer, or auto
    min_sqnr: float | None = None  # precision auto: the output SQNR to reach (default: all-int16's less 1 dB)
    ram_budget: int | None = None  # precision auto: the arena bytes int16 layers may take at most
    calibration: str = "auto"  # activation ranges (codegen/passes/calibrate.py METHODS)
    percentile: float = 99.99  # calibration "percentile" (and a candidate of "auto")
    weight_clipping: str = "none"  # WEIGHT_CLIPPINGS
    reconstruct: str = "auto"  # int8 layers against the float teacher (codegen/passes/reconstruct.py CHOICES)
    equalize: bool = True  # int8: cross-layer equalization where it helps (codegen/passes/equalize.py)
    per_layer: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        for what, value, allowed in (("mode", self.mode, MODES), ("arena placement", self.arena, ARENAS),
                                     ("encoding", self.encoding, ENCODINGS),
                                     ("precision", self.precision, PRECISIONS),
                                     ("weight clipping", self.weight_clipping, WEIGHT_CLIPPINGS),
                                     ("reconstruction", self.reconstruct, RECONSTRUCTS)):
            if value not in allowed:
                raise CompileError(f"unknown {what} '{value}' (choose from {', '.join(allowed)})")
        if self.float_io and self.mode != "int8":
            raise CompileError("float I/O wrappers apply to int8 models")
        calibrate.check_options(self.calibration, self.percentile)
        for name, choices in self.per_layer.items():
            unknown = sorted(set(choices) - set(LAYER_KEYS))
            if unknown:
                raise CompileError(f"layer '{name}': unknown per-layer option {unknown[0]} "
                                   f"(choose from {', '.join(LAYER_KEYS)})")

    @property
    def int8(self) -> bool:
        return self.mode == "int8"

    @property
    def pruning(self) -> PruneOptions | None:
        """The pruning to do, with per_layer sparsities merged in (None: no pruning)."""
        layers = {n: c["sparsity"] for n, c in self.per_layer.items() if "sparsity" in c}
        prune = self.prune
        if layers:
            prune = dataclasses.replace(prune or PruneOptions(), per_layer={**(prune.per_layer if prune else {}),
                                                                            **layers})
        return prune if prune is not None and prune.active else None

    @property
    def reconstruction(self) -> str:
        """The reconstruct mode that runs: "auto" is "full" for a pruned model, else "bias"."""
        if self.reconstruct != "auto":
            return self.reconstruct
        return "full" if self.pruning is not None else "bias"

    def layer(self, name: str, key: str, default=None):
        """The per-layer choice `key` of node `name`, else `default`."""
        return self.per_layer.get(name, {}).get(key, default)

    def as_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["prune"] = dataclasses.asdict(self.prune) if self.prune is not None else None
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "CompileOptions":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CompileError(f"unknown option '{unknown[0]}'")
        data = dict(data)
        if data.get("prune") is not None:
            data["prune"] = PruneOptions(**data["prune"])
        return cls(**data)
