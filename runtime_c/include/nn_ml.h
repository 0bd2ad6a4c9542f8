/* Classic machine learning (ai.onnx.ml): preprocessing, trees, SVMs, the classifier
 * finalizer. Included by nn.h. Inputs are feature rows: in[r * features + c]. */
#ifndef NN_ML_H
#define NN_ML_H

#include <stdint.h>

/* Row-wise operators: rows x cols, dense. `mode`: Normalizer 0 MAX, 1 L1, 2 L2. */
typedef struct {
    int32_t rows;
    int32_t cols;
    int32_t mode;
} nn_rows_params;

/* Scaler: out[r, c] = (in[r, c] - offset[c]) * scale[c]. In place allowed. */
void nn_scaler_f32(const nn_rows_params *p, const float *in, const float *offset, const float *scale, float *out);

/* Normalizer: each row divided by its maximum (MAX), its sum of |x| (L1) or the square root of
 * its sum of squares (L2), summed left to right; a row whose divisor is 0 is copied. In place allowed. */
void nn_normalizer_f32(const nn_rows_params *p, const float *in, float *out);

/* Binarizer: out = in > threshold ? 1 : 0 (NaN gives 0). In place allowed. */
typedef struct {
    int32_t size;
    float threshold;
} nn_binarizer_params;

void nn_binarizer_f32(const nn_binarizer_params *p, const float *in, float *out);

/* ArrayFeatureExtractor: out[r, j] = in[r, index[j]], elements of elem_size bytes;
 * every index in [0, in_cols). `in` and `out` must not overlap. */
typedef struct {
    int32_t rows;
    int32_t in_cols;
    int32_t out_cols;
    int32_t elem_size;
} nn_select_columns_params;

void nn_select_columns(const nn_select_columns_params *p, const void *in, const int32_t *index, void *out);

/*
 * Tree ensembles. Nodes of all trees in one table, each tree in preorder from roots[t]:
 *   feature[i] == 0xFFFF: a leaf; jump[i] is its row among the tree's leaves, so its values
 *     are leaves[(leaf_base[t] + jump[i]) * width + k].
 *   otherwise bits 0-13 are the feature index f, bit 14 (0x4000) asks for x[f] == threshold
 *     (else x[f] <= threshold), bit 15 (0x8000) sends a NaN feature to the true child;
 *     the true child is node i + 1, the false child node i + jump[i].
 * width == outputs: a leaf holds one value per output; width == 1: one value, for output
 * tree_target[t] (or output 0 when tree_target is NULL).
 * aggregate: 0 SUM, 1 AVERAGE (the sum over trees, divided by the tree count), 2 MIN, 3 MAX;
 * then base[k] is added. out: [rows, outputs] float.
 * int8 (nn_tree_ensemble_s8): the same walk on int8 features with int16 thresholds in the
 * input's int8 domain (q <= threshold, or q == threshold); int32 leaves and base at one scale
 * (the compiler keeps every sum within 2^30), summed (SUM and AVERAGE: the 1/trees is the
 * caller's multiplier), or their MIN or MAX; out: [rows, outputs] int32 for nn_classify_s8.
 */
typedef struct {
    int32_t rows;
    int32_t features;
    int32_t trees;
    int32_t outputs;
    int32_t width;
    int32_t aggregate;
    int32_t flags; /* 0: no node has bit 14 or 15 set (the walk tests neither) */
} nn_tree_ensemble_params;

void nn_tree_ensemble_f32(const nn_tree_ensemble_params *p, const float *in, const uint16_t *feature,
                          const float *threshold, const uint16_t *jump, const int32_t *roots,
                          const int32_t *leaf_base, const float *leaves, const int16_t *tree_target,
                          const float *base, float *out);
void nn_tree_ensemble_s8(const nn_tree_ensemble_params *p, const int8_t *in, const uint16_t *feature,
                         const int16_t *threshold, const uint16_t *jump, const int32_t *roots,
                         const int32_t *leaf_base, const int32_t *leaves, const int16_t *tree_target,
                         const int32_t *base, int32_t *out);

/*
 * Classifier finalizer: raw scores [rows, raw] -> label[rows] (int32) and scores [rows, classes].
 * rule 0: label = labels[k] for the first k with the largest raw score;
 * rule 1: label = raw[col] > threshold ? labels[1] : labels[0].
 * expand (raw == 1, classes == 2): 1 gives (1 - s, s), 2 gives (-s, s), 3 gives
 * (1 - logistic(s), logistic(s)); 0 copies raw.
 * post: 0 NONE, 1 LOGISTIC (1 / (1 + exp(-|x|)), mirrored below 0), 2 SOFTMAX,
 * 3 SOFTMAX_ZERO (values within 1e-7 of 0 are scaled by exp(-max) and left out of the sum).
 * scores may start where raw does (in place, the rows taken last first, so a one-score model
 * expands into two columns); other overlap is not allowed.
 */
typedef struct {
    int32_t rows;
    int32_t raw;
    int32_t classes;
    int32_t rule;
    int32_t col;
    float threshold;
    int32_t expand;
    int32_t post;
} nn_classify_params;

void nn_classify_f32(const nn_classify_params *p, const float *raw, const int32_t *labels, int32_t *label,
                     float *scores);

/*
 * Support vector machines. k(x, v) for each support vector v (vectors x features):
 * kernel 0 LINEAR x.v, 1 POLY (gamma x.v + coef0)^degree, 2 RBF exp(-gamma |x - v|^2),
 * 3 SIGMOID tanh(gamma x.v + coef0); sums left to right in float.
 * Regressor: out[r] = sum_j coef[j] k(x, v_j) + rho[0]; classes 2 marks a one-class SVM, whose
 * output is 1 where that sum is > 0, else -1.
 * Classifier (one-vs-one, classes >= 2; class c owns vectors [start[c], start[c + 1])): for each
 * pair i < j, d = sum over i's vectors of coef[(j - 1) * vectors + m] k_m + sum over j's vectors
 * of coef[i * vectors + m] k_m + rho[pair] (each product in float, summed in double, as onnxruntime
 * does, then rounded to float); d > 0 votes for i, else for j. label = labels of the
 * first class with the most votes; scores: the pairs' d, or (-d, d) for two classes.
 * scratch: vectors + classes floats.
 */
typedef struct {
    int32_t rows;
    int32_t features;
    int32_t vectors;
    int32_t classes;
    int32_t kernel;
    float gamma;
    float coef0;
    float degree;
} nn_svm_params;

void nn_svm_kernel_f32(const nn_svm_params *p, const float *x, const float *vectors, float *k);
void nn_svm_regressor_f32(const nn_svm_params *p, const float *in, const float *vectors, const float *coef,
                          const float *rho, float *scratch, float *out);
void nn_svm_classifier_f32(const nn_svm_params *p, const float *in, const float *vectors, const float *coef,
                           const float *rho, const int32_t *start, const int32_t *labels, float *scratch,
                           int32_t *label, float *scores);

/*
 * int8 rules. input_offset is minus the input zero point; output_offset the output zero point.
 *
 * Scaler: acc = weight[c] * (in + input_offset) + bias[c] (int32: weight = +-256 or 0, the sign of
 * the scale; bias = -weight * offset[c] / input_scale, rounded), out = nn_output_s8(acc,
 * multiplier[c], shift[c]) with the real multiplier |scale[c]| * input_scale / (256 * output_scale).
 */
typedef struct {
    int32_t rows;
    int32_t cols;
    int32_t input_offset;
    int32_t output_offset;
} nn_scaler_s8_params;

void nn_scaler_s8(const nn_scaler_s8_params *p, const int8_t *in, const int32_t *weight, const int32_t *bias,
                  const int32_t *multiplier, const int8_t *shift, int8_t *out);

/* Binarizer: out = in > threshold ? one : zero (threshold: the largest level at or below the real
 * threshold, in [-129, 127]; one and zero: 1.0 and 0.0 quantized). */
typedef struct {
    int32_t size;
    int32_t threshold;
    int32_t one;
    int32_t zero;
} nn_binarizer_s8_params;

void nn_binarizer_s8(const nn_binarizer_s8_params *p, const int8_t *in, int8_t *out);

/*
 * Normalizer: the input scale cancels, so with d = in + input_offset the ratio d / den is exact
 * integer arithmetic: den = max d (MAX), sum |d| (L1), or floor(256 sqrt(sum d^2)) (L2, by an
 * integer square root of the sum times 2^16). ratio = round(d 2^16 / den) (MAX, L1) or
 * round(d 2^24 / den) (L2), half away from zero, in 64 bits; out = nn_output_s8(ratio, multiplier,
 * shift) with the real multiplier 2^-16 / output_scale. A row whose den is 0 is copied:
 * out = nn_output_s8(d, copy_multiplier, copy_shift), real input_scale / output_scale.
 */
typedef struct {
    int32_t rows;
    int32_t cols;
    int32_t mode;
    int32_t input_offset;
    int32_t output_offset;
    int32_t multiplier;
    int32_t shift;
    int32_t copy_multiplier;
    int32_t copy_shift;
} nn_normalizer_s8_params;

void nn_normalizer_s8(const nn_normalizer_s8_params *p, const int8_t *in, int8_t *out);

/* Linear scores: acc[r, n] = bias[n] + sum_k in[r, k] weight[n, k] (int32; the input zero point
 * folded into bias, |acc| < 2^31 proved by the compiler; one weight scale for all n, so the
 * accumulators compare as the real scores do). */
typedef struct {
    int32_t rows;
    int32_t features;
    int32_t outputs;
} nn_linear_scores_s8_params;

void nn_linear_scores_s8(const nn_linear_scores_s8_params *p, const int8_t *in, const int8_t *weight,
                         const int32_t *bias, int32_t *acc);

/*
 * int8 classifier finalizer from int32 scores acc [rows, raw] at one scale: the label as in
 * nn_classify_f32 (threshold in the accumulator's units; none when label is NULL: a regressor's
 * scores); each score column k is
 * v = nn_output_s8(acc[raw == 1 ? 0 : k], multiplier, shift, output_offset), then, when lut is
 * not NULL, lut[t * 256 + v + 128] with t = k for a one-score model (two tables: the two
 * columns), t = 0 otherwise (the post_transform as a table). SOFTMAX follows as nn_softmax_s8.
 */
typedef struct {
    int32_t rows;
    int32_t raw;
    int32_t classes;
    int32_t rule;
    int32_t col;
    int32_t threshold;
    int32_t multiplier;
    int32_t shift;
    int32_t output_offset;
} nn_classify_s8_params;

void nn_classify_s8(const nn_classify_s8_params *p, const int32_t *acc, const int32_t *labels, const int8_t *lut,
                    int32_t *label, int8_t *scores);

#endif /* NN_ML_H */
