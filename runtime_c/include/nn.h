/*
 * onnx2mcu runtime: the kernels that generated model code calls.
 *
 * Conventions for every kernel:
 * - C99, no malloc, no global state; only string.h and stdint.h (math.h in float kernels).
 * - Names are nn_<op>[_<variant>]_<dtype>: f32 is float32, s8 is int8, s16 is int16 (int16
 *   activations with int8 weights: TFLite's 16x8 scheme, zero point 0; nn_requantize_s8_s16 and
 *   nn_requantize_s16_s8 convert where int8 and int16 layers meet).
 * - Activation tensors are dense, row-major, batch first, in the ONNX layout of the
 *   model ([N, C, H, W] for images); a 1-D convolution or pool is the 2-D one with H = 1.
 * - Parameters come in a const struct (stored in flash by the generated code); tensor
 *   pointers follow. Shapes are int32_t and at most NN_MAX_DIMS dimensions.
 * - Output pointers may equal input pointers only where a kernel says it works in place.
 * - Fused activations are an output clamp [act_min, act_max]; use -INFINITY/INFINITY
 *   (float) for none.
 */
#ifndef NN_H
#define NN_H

#include <stdint.h>

#define NN_MAX_DIMS 6

#include "nn_index.h"
#include "nn_fc.h"
#include "nn_matmul.h"
#include "nn_conv.h"
#include "nn_resize.h"
#include "nn_pool.h"
#include "nn_eltwise.h"
#include "nn_activation.h"
#include "nn_softmax.h"
#include "nn_recurrent.h"
#include "nn_reduce.h"
#include "nn_norm.h"
#include "nn_lrn.h"
#include "nn_shape.h"
#include "nn_sparse.h"
#include "nn_quantize.h"
#include "nn_cast.h"
#include "nn_compare.h"
#include "nn_ml.h"

#endif /* NN_H */
