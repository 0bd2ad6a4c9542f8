"""Operator families. Importing this package registers every family (ops/base.py)."""

from codegen.ops import (  # noqa: F401  (imported for registration)
    activation,
    cast,
    castlike,
    compare,
    conv,
    deconv,
    eltwise,
    gemm,
    indexing,
    lrn,
    ml,
    movement,
    norm,
    parametric,
    pool,
    quantize,
    recurrent,
    reduce,
    requantize,
    resize,
    reshape,
    softmax,
    variadic,
)
from codegen.ops.base import Op, get_op, supported_op_types

__all__ = ["Op", "get_op", "supported_op_types"]
