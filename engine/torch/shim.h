// shim.h — the extern "C" surface of Pioneer's libtorch binding.
//
// Every tensor handle is a heap-allocated at::Tensor owned by the caller, released with
// pt_free. Every function that can fail returns pt_err: NULL on success, otherwise a
// malloc'ed message (the C++ exception text) that the caller frees with pt_free_err.
// Nothing here throws or aborts.
#ifndef PIONEER_TORCH_SHIM_H
#define PIONEER_TORCH_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_tensor_s* pt_tensor;
typedef struct pt_generator_s* pt_generator;
typedef char* pt_err;

#define PT_MAX_DIMS 16

// Metadata of one tensor, filled by pt_info.
typedef struct {
  int32_t dim;
  int64_t sizes[PT_MAX_DIMS];
  int32_t dtype;         // c10::ScalarType value
  int32_t device_type;   // 0 CPU, 1 CUDA
  int32_t device_index;  // -1 when unset
  int32_t requires_grad;
  int32_t defined;
} pt_tensor_info;

// ---- library -----------------------------------------------------------------------
// pt_init loads libtorch_cuda.so (next to libtorch_cpu.so, or on the loader path) when it
// exists. *cuda_msg receives why CUDA is unavailable (malloc'ed, may be NULL).
void pt_init(char** cuda_msg);
int pt_cuda_device_count(void);
int64_t pt_live_tensors(void);
// pt_cpu_reuse installs Pioneer's CPU allocator in libtorch (cpualloc.cpp) and sets how many
// bytes of freed large blocks it keeps for reuse (0: none). pt_cpu_reuse_stats reports the
// bytes kept now and how many large blocks were handed out again or newly allocated.
void pt_cpu_reuse(int64_t limit_bytes);
void pt_cpu_reuse_stats(int64_t* kept, int64_t* reused, int64_t* fresh);
void pt_free_err(pt_err e);
void pt_free(pt_tensor t);
void pt_set_num_threads(int n);
int pt_get_num_threads(void);
// Sets the number of threads libtorch's kernels (its own parallel loops and MKL's
// products) use when called from the calling OS thread, n >= 1; other threads keep theirs.
// Returns the previous count.
int pt_thread_set_num_threads(int n);
void pt_manual_seed(uint64_t seed);
pt_err pt_synchronize(int32_t device_type, int32_t device_index);
pt_err pt_version(char** out);  // malloc'ed "major.minor.patch"

// ---- generators ---------------------------------------------------------------------
pt_err pt_generator_new(uint64_t seed, int32_t device_type, int32_t device_index, pt_generator* out);
void pt_generator_free(pt_generator g);
pt_err pt_generator_get_state(pt_generator g, pt_tensor* out);
pt_err pt_generator_set_state(pt_generator g, pt_tensor state);

// ---- creation -----------------------------------------------------------------------
// pt_from_blob wraps memory it does not own; release_id is passed to the Go callback
// pioneerReleaseBlob when the storage dies.
pt_err pt_from_blob(void* data, const int64_t* shape, int ndim, int32_t dtype, int64_t release_id, pt_tensor* out);
pt_err pt_from_copy(const void* data, int64_t nbytes, const int64_t* shape, int ndim, int32_t dtype,
                    int32_t device_type, int32_t device_index, pt_tensor* out);
pt_err pt_full(const int64_t* shape, int ndim, double value, int32_t dtype, int32_t device_type,
               int32_t device_index, pt_tensor* out);
pt_err pt_randn(const int64_t* shape, int ndim, int32_t dtype, int32_t device_type, int32_t device_index,
                pt_generator g, pt_tensor* out);
pt_err pt_rand(const int64_t* shape, int ndim, int32_t dtype, int32_t device_type, int32_t device_index,
               pt_generator g, pt_tensor* out);
pt_err pt_arange(double start, double end, double step, int32_t dtype, int32_t device_type,
                 int32_t device_index, pt_tensor* out);

// ---- metadata and transfer --------------------------------------------------------------
pt_err pt_info(pt_tensor t, pt_tensor_info* out);
pt_err pt_to(pt_tensor t, int32_t dtype, int32_t device_type, int32_t device_index, pt_tensor* out);
// pt_copy_out copies a tensor's elements (any device/layout) into dst as dtype; nbytes must
// equal numel * element size.
pt_err pt_copy_out(pt_tensor t, void* dst, int64_t nbytes);
pt_err pt_item(pt_tensor t, double* out);

// ---- operations by code -----------------------------------------------------------------
// Unary operations.
enum {
  PT_NEG, PT_EXP, PT_LOG, PT_SQRT, PT_RSQRT, PT_ABS, PT_TANH, PT_SIGMOID, PT_RELU, PT_SILU,
  PT_GELU, PT_GELU_TANH, PT_SIN, PT_COS, PT_SQUARE, PT_RECIPROCAL, PT_LOGICAL_NOT,
  PT_CONTIGUOUS, PT_CLONE, PT_DETACH, PT_SUM_ALL, PT_MEAN_ALL, PT_FLOOR, PT_ISFINITE,
};
pt_err pt_unary(int op, pt_tensor a, pt_tensor* out);

// Binary elementwise operations with broadcasting.
enum {
  PT_ADD, PT_SUB, PT_MUL, PT_DIV, PT_POW, PT_MAXIMUM, PT_MINIMUM, PT_EQ, PT_NE, PT_LT, PT_LE,
  PT_GT, PT_GE, PT_LOGICAL_AND, PT_LOGICAL_OR, PT_MATMUL,
};
pt_err pt_binary(int op, pt_tensor a, pt_tensor b, pt_tensor* out);
// The same operations with a scalar right-hand side (PT_MATMUL excluded).
pt_err pt_binary_scalar(int op, pt_tensor a, double b, pt_tensor* out);

// Reductions over dims (ndims == 0 means all dims).
enum { PT_SUM, PT_MEAN, PT_AMAX, PT_AMIN, PT_LOGSUMEXP, PT_VAR };
pt_err pt_reduce(int op, pt_tensor a, const int64_t* dims, int ndims, int keepdim, pt_tensor* out);
pt_err pt_argmax(pt_tensor a, int64_t dim, int keepdim, pt_tensor* out);
pt_err pt_topk(pt_tensor a, int64_t k, int64_t dim, pt_tensor* values, pt_tensor* indices);
pt_err pt_sort(pt_tensor a, int64_t dim, int descending, pt_tensor* values, pt_tensor* indices);
pt_err pt_cumsum(pt_tensor a, int64_t dim, pt_tensor* out);

// ---- shape --------------------------------------------------------------------------
pt_err pt_reshape(pt_tensor a, const int64_t* shape, int ndim, pt_tensor* out);
pt_err pt_expand(pt_tensor a, const int64_t* shape, int ndim, pt_tensor* out);
pt_err pt_permute(pt_tensor a, const int64_t* dims, int ndim, pt_tensor* out);
pt_err pt_transpose(pt_tensor a, int64_t d0, int64_t d1, pt_tensor* out);
pt_err pt_slice(pt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, pt_tensor* out);
pt_err pt_select(pt_tensor a, int64_t dim, int64_t index, pt_tensor* out);
pt_err pt_unsqueeze(pt_tensor a, int64_t dim, pt_tensor* out);
pt_err pt_squeeze(pt_tensor a, int64_t dim, pt_tensor* out);
pt_err pt_cat(const pt_tensor* ts, int n, int64_t dim, pt_tensor* out);
pt_err pt_stack(const pt_tensor* ts, int n, int64_t dim, pt_tensor* out);
pt_err pt_index_select(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor* out);
pt_err pt_index_add(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor source, pt_tensor* out);
pt_err pt_gather(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor* out);
pt_err pt_where(pt_tensor cond, pt_tensor a, pt_tensor b, pt_tensor* out);
pt_err pt_masked_fill(pt_tensor a, pt_tensor mask, double value, pt_tensor* out);
pt_err pt_clamp(pt_tensor a, double lo, double hi, int has_lo, int has_hi, pt_tensor* out);
pt_err pt_tril(pt_tensor a, int64_t diagonal, pt_tensor* out);

// ---- neural network ---------------------------------------------------------------------
pt_err pt_linear(pt_tensor x, pt_tensor w, pt_tensor b /* may be NULL */, pt_tensor* out);
// beta*c + alpha*(a·b) for 2-D a (n, k), b (k, m), c broadcastable to (n, m): one GEMM.
pt_err pt_addmm(pt_tensor c, pt_tensor a, pt_tensor b, double beta, double alpha, pt_tensor* out);
pt_err pt_embedding(pt_tensor weight, pt_tensor ids, pt_tensor* out);
pt_err pt_softmax(pt_tensor a, int64_t dim, int log, pt_tensor* out);
pt_err pt_rms_norm(pt_tensor x, pt_tensor w /* may be NULL */, double eps, pt_tensor* out);
pt_err pt_layer_norm(pt_tensor x, pt_tensor w, pt_tensor b, double eps, pt_tensor* out);
// Rotary embedding in the rotate-half convention: x*cos + rotate_half(x)*sin, with cos and
// sin broadcastable to x (e.g. x (B, H, T, D), cos/sin (1, 1, T, D) or (B, 1, T, D)).
pt_err pt_rope(pt_tensor x, pt_tensor cos, pt_tensor sin, pt_tensor* out);
// Scaled dot-product attention; q (B, Hq, T, D), k/v (B, Hkv, S, D); Hq % Hkv == 0 (GQA).
// mask may be NULL (bool: true = attend, or additive float). scale < 0 means 1/sqrt(D).
pt_err pt_sdpa(pt_tensor q, pt_tensor k, pt_tensor v, pt_tensor mask, int causal, double dropout_p,
               double scale, pt_tensor* out);
// Cross-entropy of logits (N, C) against targets (N); targets equal to ignore_index do not
// count. reduction: 0 none, 1 mean, 2 sum.
pt_err pt_cross_entropy(pt_tensor logits, pt_tensor targets, int64_t ignore_index, int reduction,
                        pt_tensor* out);
// Inverted dropout with a generator (NULL: the default generator).
pt_err pt_dropout(pt_tensor x, double p, pt_generator g, pt_tensor* out);
pt_err pt_multinomial(pt_tensor probs, int64_t n, pt_generator g, pt_tensor* out);

// ---- quantized weights (quant.cpp) -------------------------------------------------------
// w (N, K), K a multiple of 32, as blocks of 32 along each row: w = scale·level + offset,
// scale and offset (N, K/32) float32; levels q are int8 (N, K) for *bits = 8, or two
// 4-bit levels to a byte, uint8 (N, K/2), for *bits = 4 (chosen where exact).
pt_err pt_quantize_blocks(pt_tensor w, pt_tensor* q, pt_tensor* scale, pt_tensor* offset, int* bits);
pt_err pt_dequantize_blocks(pt_tensor q, pt_tensor scale, pt_tensor offset, int bits, pt_tensor* out);
// x·wᵀ (+ b) for float32 x (…, K) on the CPU with quantized weights, without a gradient.
pt_err pt_quantized_linear(pt_tensor x, pt_tensor q, pt_tensor scale, pt_tensor offset, int bits,
                           pt_tensor b /* may be NULL */, pt_tensor* out);

// One projection of a decoder layer for pt_decode_layers. bits 8 or 4: a quantized weight
// (q, scale, offset as pt_quantize_blocks makes them) and its bias (N) or NULL. bits 32:
// float32 weights, nparts (1 to 3) matrices parts[i] (N_i, K) on the CPU whose rows, in
// order, are the weight's (a layer's query, key and value weights, not copied into one),
// each with a bias part_biases[i] (N_i), or all of them NULL; q, scale, offset unused.
typedef struct {
  pt_tensor q, scale, offset, bias;
  int bits;
  pt_tensor parts[3], part_biases[3];
  int nparts;
} pt_decode_weight;

// One Llama-family decoder layer for pt_decode_layers: RMSNorm weights, the stacked
// q/k/v projection (q rows first, then k, then v), the output projection, the stacked
// gate/up projection (gate rows first) and the down projection, and the layer's
// key/value cache (B, Hkv, Cap, D) float32.
typedef struct {
  pt_tensor input_norm, post_norm;
  pt_tensor q_norm, k_norm;  // (D): RMSNorm of each query and key head before the rotary embedding (Qwen3), or NULL
  pt_decode_weight qkv, o, gate_up, down;
  pt_tensor keys, values;
} pt_decode_layer;

// One decoding step of n layers for x (B, C) float32 on the CPU, one new token per row at
// cache slot `slot`: per layer h = RMSNorm(x), q/k/v from h, rotary embedding (cos, sin
// (B, D): each row's position; before it, with q_norm and k_norm, RMSNorm of each head), k and v written to the cache at slot, attention of each
// query head over slots [0, slot] where mask (bool, broadcastable to (B, 1, 1, slot + 1);
// NULL: all) allows, x += o(attention), x += down(silu(gate) * up) of RMSNorm(x). The
// quantized projections' products are pt_quantized_linear's; the float32 ones sum in
// float32. *out is the new x (B, C).
pt_err pt_decode_layers(pt_tensor x, const pt_decode_layer* layers, int n, pt_tensor cos, pt_tensor sin,
                        pt_tensor mask /* may be NULL */, int64_t slot, int heads, int kv_heads, int head_dim,
                        double eps, pt_tensor* out);

// ---- in place -------------------------------------------------------------------------
pt_err pt_copy_(pt_tensor dst, pt_tensor src);
pt_err pt_fill_(pt_tensor t, double value);
pt_err pt_add_(pt_tensor dst, pt_tensor src, double alpha);
pt_err pt_mul_scalar_(pt_tensor t, double value);

// ---- autograd -------------------------------------------------------------------------
pt_err pt_set_requires_grad(pt_tensor t, int on);
pt_err pt_backward(pt_tensor t, pt_tensor grad /* may be NULL */, int retain_graph);
// *out is NULL when the tensor has no gradient.
pt_err pt_grad(pt_tensor t, pt_tensor* out);
pt_err pt_zero_grad(const pt_tensor* ts, int n);
// The gradients of the scalar loss with respect to inputs (torch.autograd.grad), returned
// in out[i] (NULL where loss does not depend on inputs[i]) and not accumulated anywhere;
// the graph is freed.
pt_err pt_autograd_grad(pt_tensor loss, const pt_tensor* inputs, int n, pt_tensor* out);
// Adds g to t's gradient; an undefined gradient becomes g itself (no copy).
pt_err pt_accumulate_grad(pt_tensor t, pt_tensor g);  // sets gradients to undefined
int pt_set_grad_enabled(int on);                  // returns the previous mode (this thread)
int pt_is_grad_enabled(void);
// Autocast (mixed precision) for a device type on this thread: eligible ops (matmuls,
// attention) run in dtype. Returns the previous enabled flag; the previous dtype goes to
// *prev_dtype.
pt_err pt_set_autocast(int32_t device_type, int on, int32_t dtype, int* prev_on, int32_t* prev_dtype);

// ---- optimisation -----------------------------------------------------------------------
// One AdamW step (decoupled weight decay) over params with gradients; exp_avg and exp_avg_sq
// hold the moments (same shapes as params). step is the 1-based step number after this
// update. Uses libtorch's fused kernel where it exists. Parameters without a gradient are
// skipped.
pt_err pt_adamw_step(const pt_tensor* params, const pt_tensor* exp_avg, const pt_tensor* exp_avg_sq,
                     int n, int64_t step, double lr, double beta1, double beta2, double eps,
                     double weight_decay);
// Scales gradients so that their global L2 norm is at most max_norm (max_norm <= 0: measure
// only). *total receives the norm before clipping.
pt_err pt_clip_grad_norm(const pt_tensor* params, int n, double max_norm, double* total);

#ifdef __cplusplus
}
#endif

#endif
