"""Corrections to onnx.reference (onnx 1.23) for the float oracle that `verify` runs.

ConvTranspose:
1. group > 1: onnx.reference slices the weights [C_in, C_out / group, ...] by output channel
   and keeps one output channel per group (wrong, or a reshape error). Each group runs here as
   its own group-1 ConvTranspose of onnx.reference; the outputs are concatenated by channel.
2. output_shape with auto_pad NOTSET: onnx.reference pads nothing and fails; the spec derives
   the pads from the total padding natural - output_shape (the larger half first; with
   SAME_UPPER the smaller), which are computed here and passed on with the output_shape.

LRN:
3. onnx.reference's loop runs over the batch dimension instead of the channels (only the first
   N channels are normalized) and takes 4-D inputs only. Here each channel's window sums as the
   spec says, at any rank from 3.

Softmax, LogSoftmax, Hardmax:
4. onnx.reference applies the opset-13 rule (along `axis`, default -1) at every opset. Below
   opset 13 the input is flattened to 2-D at `axis` (default 1) and each row normalized: here
   the rule of the model's opset applies.

BatchNormalization:
5. From opset 9 to 13 onnx.reference normalizes with the batch's own statistics blended in by
   `momentum` (whose schema default, 0.9, is always set): training arithmetic, although those
   versions compute the running statistics' outputs only when asked for them. The inference
   formula applies here unless opset 14's training_mode is set.
"""

from __future__ import annotations

import numpy as np
from onnx.reference.ops.op_batch_normalization import BatchNormalization_14, _batchnorm_test_mode
from onnx.reference.ops.op_conv_transpose import ConvTranspose as _ReferenceConvTranspose
from onnx.reference.op_run import OpRun


class ConvTranspose(_ReferenceConvTranspose):  # the class name is the op type it replaces
    def _run(self, X, W, B=None, group=None, auto_pad=None, dilations=None, kernel_shape=None, output_padding=None,
             output_shape=None, pads=None, strides=None):
        rank = X.ndim - 2
        strides = list(strides or [1] * rank)
        dilations = list(dilations or [1] * rank)
        output_padding = list(output_padding or [0] * rank)
        if output_shape is not None:
            output_shape = list(output_shape)[-rank:]
            kernel = W.shape[2:]
            total = [strides[i] * (X.shape[i + 2] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1
                     - output_shape[i] for i in range(rank)]
            first = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in total]
            pads = first + [t - f for t, f in zip(total, first)]
            auto_pad = "NOTSET"
        attrs = {"auto_pad": auto_pad, "dilations": dilations, "kernel_shape": kernel_shape,
                 "output_padding": output_padding, "output_shape": output_shape, "pads": pads, "strides": strides}
        group = int(group or 1)
        one = super()._run
        if group == 1:
            return one(X, W, B, group=1, **attrs)
        cin, cout = X.shape[1] // group, W.shape[1]
        outs = [one(X[:, g * cin:(g + 1) * cin], W[g * cin:(g + 1) * cin],
                    None if B is None else B[g * cout:(g + 1) * cout], group=1, **attrs)[0] for g in range(group)]
        return (np.concatenate(outs, axis=1),)


class LRN(OpRun):
    def _run(self, x, alpha=None, beta=None, bias=None, size=None):
        before, after = (size - 1) // 2, size // 2  # floor((size - 1) / 2), ceil((size - 1) / 2)
        square_sum = np.zeros(x.shape, x.dtype)
        for c in range(x.shape[1]):
            square_sum[:, c] = np.sum(x[:, max(0, c - before):c + after + 1] ** 2, axis=1)
        return ((x / (bias + (alpha / size) * square_sum) ** beta).astype(x.dtype),)


def _normalize(op: OpRun, x: np.ndarray, rule) -> tuple[np.ndarray]:
    given = [a.i for a in op.onnx_node.attribute if a.name == "axis"]
    if op.run_params["opsets"].get("", 13) >= 13:
        return (rule(x, given[0] if given else -1).astype(x.dtype),)
    axis = (given[0] if given else 1) % max(x.ndim, 1)
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    return (rule(rows, 1).reshape(x.shape).astype(x.dtype),)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    d = x - x.max(axis=axis, keepdims=True)
    return d - np.log(np.exp(d).sum(axis=axis, keepdims=True))


def _hardmax(x, axis):
    first = np.expand_dims(np.argmax(x, axis=axis), axis)
    y = np.zeros_like(x)
    np.put_along_axis(y, first, 1, axis=axis)
    return y


class Softmax(OpRun):
    def _run(self, X, axis=None):
        return _normalize(self, X, _softmax)


class LogSoftmax(OpRun):
    def _run(self, X, axis=None):
        return _normalize(self, X, _log_softmax)


class Hardmax(OpRun):
    def _run(self, X, axis=None):
        return _normalize(self, X, _hardmax)


class BatchNormalization(OpRun):
    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, training_mode=None, is_test=None,
             spatial=None):
        if training_mode:
            return BatchNormalization_14._run(self, x, scale, bias, mean, var, epsilon, momentum, training_mode)
        return (_batchnorm_test_mode(x, scale, bias, mean, var, epsilon=1e-5 if epsilon is None else epsilon),)


CORRECTED_OPS = [ConvTranspose, LRN, Softmax, LogSoftmax, Hardmax, BatchNormalization]
