// quant.cpp — quantized weights for decoding on the CPU, and the product of float32 rows
// by them (shim.h, "quantized weights").
//
// Decoding one sequence reads every weight once per token, so on the CPU it runs at the
// memory's speed, and float32 weights cost 4 bytes each. Quantized weights store each
// run of kBlock values along a row of w with a float scale s and offset o of their own,
// w = s·q + o, q in 8 bits (1.25 bytes a weight) or, where that holds the block exactly,
// 4 bits (0.75 bytes).
//
// 8 bits: per block the better (lower largest error) of a symmetric encoding (s =
// max|w| / 127, o = 0, q from -127 to 127), which holds GGUF Q8_0 blocks exactly, and an
// asymmetric one (s = (max - min) / 255, q from -128), which holds 16 evenly spaced
// levels from a minimum (GGUF Q4_1) exactly: their step is 17 of s. A weight is off by at
// most half a step.
// 4 bits: s = (max - min) / span, o = min + 8·s, q from -8 to 7, stored plus 8 two to a
// byte (element i of a block in the low half of its byte i, element i + 16 in the high
// half: llama.cpp's layout); span is 15, or fewer levels where the block uses fewer
// (encode4). Chosen for a whole matrix when every block of it comes back within float
// rounding (a Q4_1 file's weights, and Q4_K's and Q4_0's: 16 evenly spaced levels per
// block of 32, however many of them a block uses). Centred levels keep the error that
// x's quantization brings (below) as small as at 8 bits: it scales with the level term,
// s·q, not with w.
//
// The product quantizes x the same way, block by block (symmetric: a scale max|x|/127 and
// integers up to ±127), so that each block's 32 products are integer products summed
// exactly: y[m][n] = Σ_b s[n][b]·dx[m][b]·Σ_i q[n][i]·qx[m][i] + o[n][b]·X[m][b], X being
// the sum of x's own values in the block (the offsets see x unquantized). This is how
// llama.cpp multiplies its Q8_0 and Q4 weights.
//
// pt_decode_layers runs a whole Llama-family decoding step (every layer, a few rows) in
// one call: at one row, some twenty libtorch calls a layer cost more than its
// arithmetic, so the norms, rotary embedding, cache write, attention and MLP are plain
// loops here around the same products, for quantized weights or float32 ones (whose
// products sum in float32, fmatmul).
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "shim_internal.h"

using pt_internal::tensor_of;
using pt_internal::wrap_tensor;

namespace {

constexpr int64_t kBlock = 32;

// kRowBlock is how many rows of a quantized weight a product takes at a time with every
// row of x (range_avx2): 16 rows of 1,024 weights are at most 16 KiB, within a core's L1.
constexpr int64_t kRowBlock = 16;

// kFloatRows is kRowBlock for float32 weights (frange_avx2): a multiple of the three rows
// frows_avx2 takes at a time (with 16, each block's last row was computed as three), and
// 12 rows of 576 (SmolLM2's projections) are 27 KiB, within a core's L1 cache. Float32
// SmolLM2-135M at batch 16 decoded at 198 tokens/s against 169 with 16 (three alternating
// runs of pioneer generate each).
constexpr int64_t kFloatRows = 12;

// encode8 writes block v's 8-bit encoding.
void encode8(const float* v, int8_t* q, float* scale, float* offset) {
  float lo = v[0], hi = v[0];
  for (int64_t i = 1; i < kBlock; i++) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
  int8_t sym[kBlock], asym[kBlock];
  const float s1 = std::max(-lo, hi) / 127.0f;
  float e1 = 0;
  for (int64_t i = 0; i < kBlock; i++) {
    const float r = s1 > 0 ? std::min(127.0f, std::max(-127.0f, std::nearbyint(v[i] / s1))) : 0.0f;
    sym[i] = static_cast<int8_t>(r);
    e1 = std::max(e1, std::fabs(v[i] - s1 * r));
  }
  const float s2 = (hi - lo) / 255.0f, o2 = lo + 128.0f * s2;
  float e2 = 0;
  for (int64_t i = 0; i < kBlock; i++) {
    const float r = s2 > 0 ? std::min(127.0f, std::max(-128.0f, std::nearbyint((v[i] - o2) / s2))) : 0.0f;
    asym[i] = static_cast<int8_t>(r);
    e2 = std::max(e2, std::fabs(v[i] - (s2 * r + o2)));
  }
  const bool use_sym = e1 <= e2;
  std::memcpy(q, use_sym ? sym : asym, kBlock);
  *scale = use_sym ? s1 : s2;
  *offset = use_sym ? 0.0f : o2;
}

// encode4 writes block v's 4-bit encoding (16 bytes) and reports whether it holds the
// block within float rounding: every value within 8 float32 steps of the block's
// largest magnitude. The step is (max - min) / span, span the number of levels between
// the block's ends: 15 where the block reaches both end levels (every Q4_1 block);
// otherwise (Q4_K and Q4_0 blocks often use fewer) the smallest gap between its values,
// or a half, a third... of it, gives the span, the first that puts every value on a
// level. The levels are then 0 to span from the minimum, stored as they are.
bool encode4(const float* v, uint8_t* q, float* scale, float* offset) {
  float lo = v[0], hi = v[0];
  for (int64_t i = 1; i < kBlock; i++) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
  const float tol = 8 * std::max(std::fabs(lo), std::fabs(hi)) * 1.1920929e-7f;
  uint8_t l[kBlock];
  // fits encodes the block with span levels between its ends and reports whether every
  // value is on one.
  auto fits = [&](int span, float* s_out, float* o_out) {
    const float s = span > 0 ? (hi - lo) / static_cast<float>(span) : 0.0f, o = lo + 8.0f * s;
    bool exact = true;
    for (int64_t i = 0; i < kBlock; i++) {
      const float r = s > 0 ? std::min(15.0f, std::max(0.0f, std::nearbyint((v[i] - lo) / s))) : 8.0f;
      l[i] = static_cast<uint8_t>(r);
      exact = exact && std::fabs(v[i] - (s * (r - 8.0f) + o)) <= tol;
    }
    *s_out = s;
    *o_out = o;
    return exact;
  };
  float s, o;
  bool exact = fits(15, &s, &o);
  if (!exact && hi - lo > tol) {
    float gap = hi - lo;  // the smallest gap between distinct values
    float sorted[kBlock];
    std::memcpy(sorted, v, sizeof sorted);
    std::sort(sorted, sorted + kBlock);
    for (int64_t i = 1; i < kBlock; i++)
      if (sorted[i] - sorted[i - 1] > tol) gap = std::min(gap, sorted[i] - sorted[i - 1]);
    for (int div = 1; !exact && div <= 15; div++) {
      const int span = static_cast<int>(std::nearbyint((hi - lo) / gap * static_cast<float>(div)));
      if (span > 15) break;
      if (span >= 1 && span < 15) exact = fits(span, &s, &o);
    }
    if (!exact) fits(15, &s, &o);  // the caller falls back to 8 bits
  }
  for (int64_t i = 0; i < kBlock / 2; i++) q[i] = static_cast<uint8_t>(l[i] | (l[i + kBlock / 2] << 4));
  *scale = s;
  *offset = o;
  return exact;
}

// Rows is x quantized for the product.
struct Rows {
  const int8_t* qx;  // (M, K)
  const float* dx;   // (M, K/32) their scales
  const float* xs;   // (M, K/32) sums of x's own values by block
  const float* xq;   // (M, K/32) sums of the quantized values by block, times dx
};

void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* qx, float* dx, float* xs, float* xq) {
  for (int64_t b = 0; b < M * K / kBlock; b++) {
    const float* v = x + b * kBlock;
    float amax = 0, sum = 0;
    for (int64_t i = 0; i < kBlock; i++) amax = std::max(amax, std::fabs(v[i])), sum += v[i];
    const float d = amax / 127.0f;
    int32_t isum = 0;
    for (int64_t i = 0; i < kBlock; i++) {
      qx[b * kBlock + i] = d > 0 ? static_cast<int8_t>(std::nearbyint(v[i] / d)) : 0;
      isum += qx[b * kBlock + i];
    }
    dx[b] = d;
    xs[b] = sum;
    xq[b] = d * static_cast<float>(isum);
  }
}

// level returns value i (0 to 31) of a block of bits-bit weights starting at qb.
inline int32_t level(const uint8_t* qb, int bits, int64_t i) {
  if (bits == 8) return static_cast<int8_t>(qb[i]);
  return (i < kBlock / 2 ? (qb[i] & 15) : (qb[i - kBlock / 2] >> 4)) - 8;
}

// range_generic writes y[m][n] for n in [n0, n1), all m.
void range_generic(const Rows& x, const uint8_t* q, int bits, const float* sc, const float* of, float* y, int64_t M,
                   int64_t N, int64_t K, int64_t n0, int64_t n1) {
  const int64_t nb = K / kBlock, bb = kBlock * bits / 8;  // bytes per block
  for (int64_t n = n0; n < n1; n++) {
    for (int64_t m = 0; m < M; m++) {
      float acc = 0;
      for (int64_t b = 0; b < nb; b++) {
        const uint8_t* qb = q + (n * nb + b) * bb;
        const int8_t* xb = x.qx + m * K + b * kBlock;
        int32_t t = 0;
        for (int64_t i = 0; i < kBlock; i++) t += level(qb, bits, i) * int32_t(xb[i]);
        acc += sc[n * nb + b] * x.dx[m * nb + b] * static_cast<float>(t) + of[n * nb + b] * x.xs[m * nb + b];
      }
      y[m * N + n] = acc;
    }
  }
}

#if defined(__x86_64__)
using pt_internal::cpu_has_avx2_fma;
using pt_internal::cpu_has_avx512f;
using pt_internal::hsum8;

// BITS = 8: signed levels, multiplied as |w| by v·sign(w) (unsigned by signed bytes; w is
// never below -128 and v never below -127, so the pairs' sums fit 16 bits). BITS = 4: the
// stored levels 0 to 15, unsigned; the 8 they are above the true ones is taken back per
// block (8·s·Σ qx, from Rows::xq).
template <int BITS>
__attribute__((target("avx2,fma"))) inline __m256i block_levels(const uint8_t* qb) {
  if (BITS == 8) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qb));
  // the 16 bytes in both halves, the high half shifted down a nibble
  const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qb)));
  return _mm256_and_si256(_mm256_blend_epi32(raw, _mm256_srli_epi16(raw, 4), 0xF0), _mm256_set1_epi8(15));
}

// block_dot returns the eight int32 partial sums of Σ_i w[i]·v[i] over a block; u is w
// as the unsigned operand (|w| for 8 bits, w itself for 4).
template <int BITS>
__attribute__((target("avx2,fma"))) inline __m256i block_dot(__m256i u, __m256i w, const int8_t* v) {
  __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v));
  if (BITS == 8) x = _mm256_sign_epi8(x, w);
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

// offset_terms returns Σ_b o[b]·xs[b] (the offsets' term) and, at 4 bits, minus
// Σ_b 8·s[b]·xq[b] (the 8 the stored levels are above the true ones), eight blocks at a
// time: one chain of scalar sums would cost a few cycles a block.
template <int BITS>
__attribute__((target("avx2,fma"))) inline float offset_terms(const float* o, const float* s, const float* xs,
                                                            const float* xq, int64_t nb) {
  __m256 a = _mm256_setzero_ps();
  const __m256 eight = _mm256_set1_ps(8.0f);
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    a = _mm256_fmadd_ps(_mm256_loadu_ps(o + b), _mm256_loadu_ps(xs + b), a);
    if (BITS == 4) a = _mm256_fnmadd_ps(_mm256_mul_ps(eight, _mm256_loadu_ps(s + b)), _mm256_loadu_ps(xq + b), a);
  }
  float t = hsum8(a);
  for (; b < nb; b++) t += o[b] * xs[b] - (BITS == 4 ? 8.0f * s[b] * xq[b] : 0.0f);
  return t;
}

// rows_avx2 is range_generic for R (1 to 4) rows of x starting at row m: each block of a
// row of w is loaded once and multiplied with every one of them, each row's sum in a
// register of its own.
template <int BITS, int R>
__attribute__((target("avx2,fma"))) void rows_avx2(const Rows& x, const uint8_t* q, const float* sc, const float* of,
                                                   float* y, int64_t m, int64_t N, int64_t K, int64_t n0, int64_t n1) {
  const int64_t nb = K / kBlock, bb = kBlock * BITS / 8;
  const int8_t* x0 = x.qx + m * K;
  const float* d0 = x.dx + m * nb;
  for (int64_t n = n0; n < n1; n++) {
    const uint8_t* qr = q + n * nb * bb;
    const float* sr = sc + n * nb;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t b = 0; b < nb; b++) {
      const __m256i w = block_levels<BITS>(qr + b * bb);
      const __m256i u = BITS == 8 ? _mm256_sign_epi8(w, w) : w;
      const int64_t k = b * kBlock;
      const float s = sr[b];
      if (R == 1 && (b & 1)) {  // one row: odd blocks sum apart, so consecutive blocks do not wait on each other
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<BITS>(u, w, x0 + k)), _mm256_set1_ps(s * d0[b]), a1);
        continue;
      }
      a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<BITS>(u, w, x0 + k)), _mm256_set1_ps(s * d0[b]), a0);
      if (R > 1) a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<BITS>(u, w, x0 + K + k)), _mm256_set1_ps(s * d0[nb + b]), a1);
      if (R > 2) a2 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<BITS>(u, w, x0 + 2 * K + k)), _mm256_set1_ps(s * d0[2 * nb + b]), a2);
      if (R > 3) a3 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot<BITS>(u, w, x0 + 3 * K + k)), _mm256_set1_ps(s * d0[3 * nb + b]), a3);
    }
    if (R == 1) a0 = _mm256_add_ps(a0, a1);
    const __m256 acc[4] = {a0, a1, a2, a3};
    for (int r = 0; r < R; r++) {
      float t = hsum8(acc[r]);
      y[(m + r) * N + n] = t + offset_terms<BITS>(of + n * nb, sr, x.xs + (m + r) * nb, x.xq + (m + r) * nb, nb);
    }
  }
}

// range_avx2 is range_generic 32 products at a time, four rows of x at a time, the rows
// of w by blocks of kRowBlock (as frange_avx2 by kFloatRows).
template <int BITS>
__attribute__((target("avx2,fma"))) void range_avx2(const Rows& x, const uint8_t* q, const float* sc, const float* of,
                                                    float* y, int64_t M, int64_t N, int64_t K, int64_t n0, int64_t n1) {
  for (int64_t nb = n0; nb < n1; nb += kRowBlock) {
    const int64_t ne = std::min(n1, nb + kRowBlock);
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) rows_avx2<BITS, 4>(x, q, sc, of, y, m, N, K, nb, ne);
    switch (M - m) {
      case 3:
        rows_avx2<BITS, 3>(x, q, sc, of, y, m, N, K, nb, ne);
        break;
      case 2:
        rows_avx2<BITS, 2>(x, q, sc, of, y, m, N, K, nb, ne);
        break;
      case 1:
        rows_avx2<BITS, 1>(x, q, sc, of, y, m, N, K, nb, ne);
        break;
    }
  }
}
#endif

// check_quantized validates a quantized weight and returns its (N, K).
std::pair<int64_t, int64_t> check_quantized(const at::Tensor& Q, const at::Tensor& S, const at::Tensor& O, int bits) {
  if (bits != 8 && bits != 4) throw std::invalid_argument("quantized weights have 8 or 4 bits, not " + std::to_string(bits));
  if (S.dim() != 2 || S.scalar_type() != at::kFloat || O.sizes() != S.sizes() || O.scalar_type() != at::kFloat) {
    throw std::invalid_argument("quantized weights: scale and offset must be float32 matrices of one shape, got " +
                                c10::str(S.sizes(), " and ", O.sizes()));
  }
  const int64_t N = S.size(0), K = S.size(1) * kBlock;
  const auto want = bits == 8 ? at::kChar : at::kByte;
  if (Q.dim() != 2 || Q.scalar_type() != want || Q.size(0) != N || Q.size(1) != K * bits / 8) {
    throw std::invalid_argument("quantized weights: " + std::to_string(bits) + "-bit values of (" + std::to_string(N) + ", " +
                                std::to_string(K) + ") weights must be " + c10::str(want) + " (" + std::to_string(N) + ", " +
                                std::to_string(K * bits / 8) + "), got " + c10::str(Q.scalar_type(), " ", Q.sizes()));
  }
  if (!Q.device().is_cpu() || !S.device().is_cpu() || !O.device().is_cpu()) {
    throw std::invalid_argument("quantized weights live on the CPU");
  }
  return {N, K};
}

// QW is a projection's weight (N, K) as raw pointers: quantized (bits 8 or 4: levels q,
// scales s, offsets o; b a bias (N) or null) or float32 (bits 32: nf matrices f[i] whose
// rows, in order, are the weight's, rows [end[i-1], end[i]) in f[i], each with a bias
// fb[i] or null).
struct QW {
  const uint8_t* q;
  const float *s, *o, *b;
  int bits;
  int64_t N, K;
  const float* f[3] = {nullptr, nullptr, nullptr};
  const float* fb[3] = {nullptr, nullptr, nullptr};
  int64_t end[3] = {0, 0, 0};
  int nf = 0;
};

// float_row returns row n of a float32 QW, and its bias (0 where it has none) in *bias.
inline const float* float_row(const QW& w, int64_t n, float* bias) {
  int i = 0;
  while (n >= w.end[i]) i++;
  const int64_t r = n - (i > 0 ? w.end[i - 1] : 0);
  *bias = w.fb[i] != nullptr ? w.fb[i][r] : 0.0f;
  return w.f[i] + r * w.K;
}

// dot_generic is Σ_d a[d]·b[d] over n values.
inline float dot_generic(const float* a, const float* b, int64_t n) {
  float t = 0;
  for (int64_t d = 0; d < n; d++) t += a[d] * b[d];
  return t;
}

// axpy_generic adds w·v to o over n values.
inline void axpy_generic(float* o, float w, const float* v, int64_t n) {
  for (int64_t d = 0; d < n; d++) o[d] += w * v[d];
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) inline float dot_avx2(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), acc);
  float t = hsum8(acc);
  for (; d < n; d++) t += a[d] * b[d];
  return t;
}

__attribute__((target("avx2,fma"))) inline void axpy_avx2(float* o, float w, const float* v, int64_t n) {
  const __m256 ww = _mm256_set1_ps(w);
  int64_t d = 0;
  for (; d + 8 <= n; d += 8) _mm256_storeu_ps(o + d, _mm256_fmadd_ps(ww, _mm256_loadu_ps(v + d), _mm256_loadu_ps(o + d)));
  for (; d < n; d++) o[d] += w * v[d];
}
#endif

// dot is dot_avx2 where avx2 holds, dot_generic otherwise.
inline float dot(const float* a, const float* b, int64_t n, bool avx2) {
#if defined(__x86_64__)
  if (avx2) return dot_avx2(a, b, n);
#endif
  return dot_generic(a, b, n);
}

// axpy is axpy_avx2 where avx2 holds, axpy_generic otherwise.
inline void axpy(float* o, float w, const float* v, int64_t n, bool avx2) {
#if defined(__x86_64__)
  if (avx2) {
    axpy_avx2(o, w, v, n);
    return;
  }
#endif
  axpy_generic(o, w, v, n);
}

// frange_generic writes y[m][n] = x[m]·w[n] + b[n] for n in [n0, n1), all m, of a float32 QW.
void frange_generic(const float* x, const QW& w, float* y, int64_t M, int64_t n0, int64_t n1) {
  const int64_t K = w.K, N = w.N;
  for (int64_t n = n0; n < n1; n++) {
    float bias;
    const float* wr = float_row(w, n, &bias);
    for (int64_t m = 0; m < M; m++) y[m * N + n] = dot_generic(x + m * K, wr, K) + bias;
  }
}

#if defined(__x86_64__)
// frows_avx2 is frange_generic for R (2 to 4) rows of x starting at row m, three rows of
// w at a time: each 8 weights of the three are loaded once and multiplied with every row
// of x, the 3R sums in registers of their own (3R chains, so that consecutive products
// do not wait on each other; 12 of the 16 registers at R = 4). Three rows rather than two
// decoded float32 SmolLM2-135M at batch 16 about 9 % faster here (210 against 193
// tokens/s, five alternating runs of pioneer generate).
template <int R>
__attribute__((target("avx2,fma"))) void frows_avx2(const float* x, const QW& w, float* y, int64_t m, int64_t n0, int64_t n1) {
  constexpr int C = 3;
  const int64_t K = w.K, N = w.N;
  const float* x0 = x + m * K;
  for (int64_t n = n0; n < n1; n += C) {
    const int cols = static_cast<int>(std::min<int64_t>(C, n1 - n));
    float bias[C];
    const float* wr[C];
#pragma GCC unroll 3
    for (int c = 0; c < C; c++) wr[c] = float_row(w, n + std::min(c, cols - 1), &bias[c]);
    __m256 a[R][C];  // registers: the loops unrolled (GCC keeps an array it indexes in a loop in memory)
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
#pragma GCC unroll 3
      for (int c = 0; c < C; c++) a[r][c] = _mm256_setzero_ps();
    }
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 w0 = _mm256_loadu_ps(wr[0] + k), w1 = _mm256_loadu_ps(wr[1] + k), w2 = _mm256_loadu_ps(wr[2] + k);
#pragma GCC unroll 4
      for (int r = 0; r < R; r++) {
        const __m256 xv = _mm256_loadu_ps(x0 + r * K + k);
        a[r][0] = _mm256_fmadd_ps(w0, xv, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(w1, xv, a[r][1]);
        a[r][2] = _mm256_fmadd_ps(w2, xv, a[r][2]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      for (int c = 0; c < cols; c++) {
        float t = hsum8(a[r][c]);
        for (int64_t j = k; j < K; j++) t += x0[r * K + j] * wr[c][j];
        y[(m + r) * N + n + c] = t + bias[c];
      }
    }
  }
}

// frow_avx2 is frange_generic for the one row m of x: one row of w after the other
// (dot_row), so that w is read as one stream.
__attribute__((target("avx2,fma"))) void frow_avx2(const float* x, const QW& w, float* y, int64_t m, int64_t n0, int64_t n1) {
  const int64_t K = w.K, N = w.N;
  const float* x0 = x + m * K;
  for (int64_t n = n0; n < n1; n++) {
    float bias;
    const float* wr = float_row(w, n, &bias);
    y[m * N + n] = pt_internal::dot_row(x0, wr, K) + bias;
  }
}

// The rows of w go by blocks of kFloatRows, each taken by every row of x while it is in
// the cache rather than read again from memory for each four rows.
// With AVX-512, frange_avx2 takes the rows of x by four, six rows of w at a time
// (pt_internal::rows_by_six_avx512). Float32 SmolLM2-135M at batch 16 (16 prompts, 100 new
// tokens each, pioneer generate, four alternating runs each on a 2-core AMD EPYC with
// AVX-512) decoded at 249 tokens/s against 212 with the AVX2 kernels (PIONEER_NO_AVX512=1);
// eight rows of x by three of w instead, 219 against 251 (three runs each).
__attribute__((target("avx2,fma"))) void frange_avx2(const float* x, const QW& w, float* y, int64_t M, int64_t n0, int64_t n1) {
  for (int64_t nb = n0; nb < n1; nb += kFloatRows) {
    const int64_t ne = std::min(n1, nb + kFloatRows);
    int64_t m = 0;
    if (cpu_has_avx512f()) {
      m = M - M % 4;
      pt_internal::rows_by_six_avx512(x, 0, m, w.K, w.N, nb, ne, y, [&w](int64_t n, float* bias) { return float_row(w, n, bias); });
    }
    for (; m + 4 <= M; m += 4) frows_avx2<4>(x, w, y, m, nb, ne);
    switch (M - m) {
      case 3:
        frows_avx2<3>(x, w, y, m, nb, ne);
        break;
      case 2:
        frows_avx2<2>(x, w, y, m, nb, ne);
        break;
      case 1:
        frow_avx2(x, w, y, m, nb, ne);
        break;
    }
  }
}
#endif

// fmatmul writes y (M, N) = x (M, K) · wᵀ (+ b) for a float32 QW, the threads taking runs
// of rows of w of at least 32K weights each.
void fmatmul(const float* x, int64_t M, const QW& w, float* y) {
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / w.K);
  at::parallel_for(0, w.N, grain, [&](int64_t n0, int64_t n1) {
#if defined(__x86_64__)
    if (cpu_has_avx2_fma()) {
      frange_avx2(x, w, y, M, n0, n1);
      return;
    }
#endif
    frange_generic(x, w, y, M, n0, n1);
  });
}

// Scratch is x's quantized rows, kept across products of one call.
struct Scratch {
  std::vector<int8_t> qx;
  std::vector<float> dx, xs, xq;
};

// qmatmul writes y (M, N) = x (M, K) · wᵀ (+ b): for quantized weights x quantized by
// blocks (quantize_rows), the threads taking runs of rows of w of at least 32K weights
// each; float32 weights go to fmatmul.
void qmatmul(const float* x, int64_t M, const QW& w, float* y, Scratch& t) {
  if (w.bits == 32) {
    fmatmul(x, M, w, y);
    return;
  }
  const int64_t K = w.K, N = w.N, nb = K / kBlock;
  t.qx.resize(static_cast<size_t>(M * K));
  t.dx.resize(static_cast<size_t>(M * nb));
  t.xs.resize(static_cast<size_t>(M * nb));
  t.xq.resize(static_cast<size_t>(M * nb));
  quantize_rows(x, M, K, t.qx.data(), t.dx.data(), t.xs.data(), t.xq.data());
  const Rows rows{t.qx.data(), t.dx.data(), t.xs.data(), t.xq.data()};
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / K);
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) {
#if defined(__x86_64__)
    if (cpu_has_avx2_fma()) {
      if (w.bits == 8) {
        range_avx2<8>(rows, w.q, w.s, w.o, y, M, N, K, n0, n1);
      } else {
        range_avx2<4>(rows, w.q, w.s, w.o, y, M, N, K, n0, n1);
      }
    } else {
      range_generic(rows, w.q, w.bits, w.s, w.o, y, M, N, K, n0, n1);
    }
#else
    range_generic(rows, w.q, w.bits, w.s, w.o, y, M, N, K, n0, n1);
#endif
    if (w.b != nullptr) {
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = n0; n < n1; n++) y[m * N + n] += w.b[n];
    }
  });
}

// A layer's tensors, checked and made contiguous (the originals where they are), kept
// alive for the call.
struct LayerTensors {
  at::Tensor in_norm, post_norm, q_norm, k_norm, keys, values;
  at::Tensor held[24];  // the four projections' tensors, six each (decode_weight_of)
  QW qkv, o, gate_up, down;
};

// float_weight_of checks a float32 projection (pt_decode_weight, bits 32) and returns it
// as a QW, holding its parts and biases in held[0..2] and held[3..5].
QW float_weight_of(const pt_decode_weight& w, int64_t wantK, const char* what, at::Tensor* held) {
  const std::string name = std::string("decode layers: ") + what;
  if (w.nparts < 1 || w.nparts > 3) throw std::invalid_argument(name + " weight needs 1 to 3 float32 parts, got " + std::to_string(w.nparts));
  QW q{nullptr, nullptr, nullptr, nullptr, 32, 0, wantK};
  q.nf = w.nparts;
  const bool biased = w.part_biases[0] != nullptr;
  for (int i = 0; i < w.nparts; i++) {
    if (w.parts[i] == nullptr) throw std::invalid_argument(name + " weight lacks part " + std::to_string(i));
    held[i] = tensor_of(w.parts[i]).contiguous();
    const at::Tensor& P = held[i];
    if (P.dim() != 2 || P.size(1) != wantK || P.scalar_type() != at::kFloat || !P.device().is_cpu()) {
      throw std::invalid_argument(name + " weight part " + std::to_string(i) + " must be float32 (N, " + std::to_string(wantK) +
                                  ") on the CPU, got " + c10::str(P.scalar_type(), " ", P.sizes(), " on ", P.device()));
    }
    q.f[i] = P.data_ptr<float>();
    q.N += P.size(0);
    q.end[i] = q.N;
    if ((w.part_biases[i] != nullptr) != biased) throw std::invalid_argument(name + " weight has biases on some parts only");
    if (biased) {
      held[3 + i] = tensor_of(w.part_biases[i]).contiguous();
      const at::Tensor& b = held[3 + i];
      if (b.scalar_type() != at::kFloat || b.numel() != P.size(0) || !b.device().is_cpu()) {
        throw std::invalid_argument(name + " bias " + std::to_string(i) + " must be float32 (" + std::to_string(P.size(0)) + ") on the CPU");
      }
      q.fb[i] = b.data_ptr<float>();
    }
  }
  return q;
}

// decode_weight_of checks one projection of a layer, (wantN, wantK), or (any even N,
// wantK) where wantN is 0, and returns it as a QW, holding its tensors in held[0..5].
QW decode_weight_of(const pt_decode_weight& w, int64_t wantN, int64_t wantK, const char* what, at::Tensor* held) {
  QW q{};
  if (w.bits == 32) {
    q = float_weight_of(w, wantK, what, held);
  } else {
    held[0] = tensor_of(w.q).contiguous();
    held[1] = tensor_of(w.scale).contiguous();
    held[2] = tensor_of(w.offset).contiguous();
    const auto [N, K] = check_quantized(held[0], held[1], held[2], w.bits);
    const float* b = nullptr;
    if (w.bias != nullptr) {
      held[3] = tensor_of(w.bias).contiguous();
      if (held[3].scalar_type() != at::kFloat || held[3].numel() != N || !held[3].device().is_cpu()) {
        throw std::invalid_argument(std::string("decode layers: ") + what + " bias must be float32 (" + std::to_string(N) + ") on the CPU");
      }
      b = held[3].data_ptr<float>();
    }
    q = QW{static_cast<const uint8_t*>(held[0].data_ptr()), held[1].data_ptr<float>(), held[2].data_ptr<float>(), b, w.bits, N, K};
  }
  if ((wantN > 0 && q.N != wantN) || (wantN == 0 && q.N % 2 != 0) || q.K != wantK) {
    throw std::invalid_argument(std::string("decode layers: ") + what + " weight is (" + std::to_string(q.N) + ", " +
                                std::to_string(q.K) + "), want (" + (wantN > 0 ? std::to_string(wantN) : std::string("an even number")) +
                                ", " + std::to_string(wantK) + ")");
  }
  return q;
}

at::Tensor float_vector(pt_tensor t, int64_t n, const char* what) {
  at::Tensor v = tensor_of(t).contiguous();
  if (v.scalar_type() != at::kFloat || v.numel() != n || !v.device().is_cpu()) {
    throw std::invalid_argument(std::string("decode layers: ") + what + " must be float32 (" + std::to_string(n) + ") on the CPU, got " +
                                c10::str(v.scalar_type(), " ", v.sizes()));
  }
  return v;
}

// rms_norm_rows writes y = x / sqrt(mean(x²) + eps) · w for each of M rows of C.
void rms_norm_rows(const float* x, const float* w, int64_t M, int64_t C, double eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    double ss = 0;
    for (int64_t c = 0; c < C; c++) ss += double(x[m * C + c]) * double(x[m * C + c]);
    const float r = static_cast<float>(1.0 / std::sqrt(ss / double(C) + eps));
    for (int64_t c = 0; c < C; c++) y[m * C + c] = x[m * C + c] * r * w[c];
  }
}

// rope_head rotates one head's D values in the rotate-half convention (pt_rope).
void rope_head(float* v, const float* cos, const float* sin, int64_t D) {
  const int64_t h = D / 2;
  for (int64_t i = 0; i < h; i++) {
    const float a = v[i], b = v[i + h];
    v[i] = a * cos[i] - b * sin[i];
    v[i + h] = b * cos[i + h] + a * sin[i + h];
  }
}

// attend writes o (D) = softmax(q·kᵀ·scale over the slots keep allows (null: all)) · v
// for one query head q (D) over S cached keys k and values v (S, D), p (S) scratch; o is
// zero where no slot is allowed.
void attend(const float* q, const float* k, const float* v, const bool* keep, int64_t S, int64_t D, float scale, float* p, float* o,
            bool avx2) {
  float top = -INFINITY;
  for (int64_t j = 0; j < S; j++) {
    if (keep != nullptr && !keep[j]) {
      p[j] = -INFINITY;
      continue;
    }
    p[j] = dot(q, k + j * D, D, avx2) * scale;
    top = std::max(top, p[j]);
  }
  std::fill(o, o + D, 0.0f);
  if (top == -INFINITY) return;  // nothing to attend to
  float sum = 0;
  for (int64_t j = 0; j < S; j++) sum += (p[j] = p[j] == -INFINITY ? 0.0f : std::exp(p[j] - top));
  for (int64_t j = 0; j < S; j++) {
    if (p[j] != 0.0f) axpy(o, p[j] / sum, v + j * D, D, avx2);
  }
}

}  // namespace

extern "C" {

pt_err pt_quantize_blocks(pt_tensor w, pt_tensor* q, pt_tensor* scale, pt_tensor* offset, int* bits) {
  PT_TRY
  const at::Tensor& W0 = tensor_of(w);
  if (W0.dim() != 2 || W0.size(1) % kBlock != 0 || W0.size(1) == 0) {
    throw std::invalid_argument("quantized weights need a matrix whose rows are a multiple of 32 long, got shape " +
                                c10::str(W0.sizes()));
  }
  const at::Tensor W = W0.detach().to(at::kCPU, at::kFloat).contiguous();
  const int64_t N = W.size(0), K = W.size(1), blocks = N * K / kBlock;
  const float* wp = W.data_ptr<float>();
  at::Tensor S = at::empty({N, K / kBlock}, at::TensorOptions().dtype(at::kFloat));
  at::Tensor O = at::empty({N, K / kBlock}, at::TensorOptions().dtype(at::kFloat));
  float *sp = S.data_ptr<float>(), *op = O.data_ptr<float>();
  at::Tensor Q = at::empty({N, K / 2}, at::TensorOptions().dtype(at::kByte));
  std::atomic<bool> exact{true};
  at::parallel_for(0, blocks, 256, [&](int64_t b0, int64_t b1) {
    uint8_t* qp = Q.data_ptr<uint8_t>();
    bool all = true;
    for (int64_t b = b0; b < b1 && all; b++) all = encode4(wp + b * kBlock, qp + b * kBlock / 2, sp + b, op + b);
    if (!all) exact.store(false);
  });
  *bits = 4;
  if (!exact.load()) {
    *bits = 8;
    Q = at::empty({N, K}, at::TensorOptions().dtype(at::kChar));
    at::parallel_for(0, blocks, 256, [&](int64_t b0, int64_t b1) {
      int8_t* qp = Q.data_ptr<int8_t>();
      for (int64_t b = b0; b < b1; b++) encode8(wp + b * kBlock, qp + b * kBlock, sp + b, op + b);
    });
  }
  *q = wrap_tensor(Q);
  *scale = wrap_tensor(S);
  *offset = wrap_tensor(O);
  PT_CATCH
}

pt_err pt_dequantize_blocks(pt_tensor q, pt_tensor scale, pt_tensor offset, int bits, pt_tensor* out) {
  PT_TRY
  const at::Tensor Q = tensor_of(q).contiguous(), S = tensor_of(scale).contiguous(), O = tensor_of(offset).contiguous();
  const auto [N, K] = check_quantized(Q, S, O, bits);
  at::Tensor W = at::empty({N, K}, at::TensorOptions().dtype(at::kFloat));
  const uint8_t* qp = static_cast<const uint8_t*>(Q.data_ptr());
  const float *sp = S.data_ptr<float>(), *op = O.data_ptr<float>();
  float* wp = W.data_ptr<float>();
  const int64_t bb = kBlock * bits / 8;
  at::parallel_for(0, N * K / kBlock, 256, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; b++) {
      for (int64_t i = 0; i < kBlock; i++) wp[b * kBlock + i] = sp[b] * static_cast<float>(level(qp + b * bb, bits, i)) + op[b];
    }
  });
  *out = wrap_tensor(W);
  PT_CATCH
}

pt_err pt_quantized_linear(pt_tensor x, pt_tensor q, pt_tensor scale, pt_tensor offset, int bits, pt_tensor b,
                           pt_tensor* out) {
  PT_TRY
  const at::Tensor& X = tensor_of(x);
  const at::Tensor Q = tensor_of(q).contiguous(), S = tensor_of(scale).contiguous(), O = tensor_of(offset).contiguous();
  const auto [N, K] = check_quantized(Q, S, O, bits);
  if (X.dim() < 1 || X.size(-1) != K || X.scalar_type() != at::kFloat || !X.device().is_cpu()) {
    throw std::invalid_argument("quantized linear: x must be float32 (..., " + std::to_string(K) + ") on the CPU, got " +
                                c10::str(X.scalar_type(), " ", X.sizes(), " on ", X.device()));
  }
  if (at::GradMode::is_enabled() && X.requires_grad()) {
    throw std::invalid_argument("quantized linear records no gradient: call it without grad");
  }
  const int64_t M = X.numel() / K;
  const at::Tensor xm = X.reshape({M, K}).contiguous();
  at::Tensor y = at::empty({M, N}, X.options());
  Scratch scratch;
  qmatmul(xm.data_ptr<float>(), M, QW{static_cast<const uint8_t*>(Q.data_ptr()), S.data_ptr<float>(), O.data_ptr<float>(), nullptr, bits, N, K},
          y.data_ptr<float>(), scratch);
  if (b != nullptr) y.add_(tensor_of(b));
  std::vector<int64_t> shape(X.sizes().begin(), X.sizes().end());
  shape.back() = N;
  *out = wrap_tensor(y.view(shape));
  PT_CATCH
}

pt_err pt_decode_layers(pt_tensor x, const pt_decode_layer* layers, int n, pt_tensor cos, pt_tensor sin, pt_tensor mask,
                        int64_t slot, int heads, int kv_heads, int head_dim, double eps, pt_tensor* out) {
  PT_TRY
  if (at::GradMode::is_enabled()) throw std::invalid_argument("decode layers record no gradient: call them without grad");
  const at::Tensor& X0 = tensor_of(x);
  if (X0.dim() != 2 || X0.scalar_type() != at::kFloat || !X0.device().is_cpu()) {
    throw std::invalid_argument("decode layers: x must be float32 (B, C) on the CPU, got " + c10::str(X0.scalar_type(), " ", X0.sizes()));
  }
  const int64_t B = X0.size(0), C = X0.size(1), Hq = heads, Hkv = kv_heads, D = head_dim, S = slot + 1;
  if (n < 1 || Hq < 1 || Hkv < 1 || Hq % Hkv != 0 || D < 2 || D % 2 != 0 || slot < 0) {
    throw std::invalid_argument("decode layers: need layers, heads a multiple of kv heads and an even head size, got " +
                                std::to_string(n) + " layers, " + std::to_string(Hq) + "/" + std::to_string(Hkv) + " heads of " +
                                std::to_string(D));
  }
  const at::Tensor Cos = tensor_of(cos).reshape({-1}).contiguous(), Sin = tensor_of(sin).reshape({-1}).contiguous();
  if (Cos.numel() != B * D || Sin.numel() != B * D || Cos.scalar_type() != at::kFloat || Sin.scalar_type() != at::kFloat) {
    throw std::invalid_argument("decode layers: cos and sin must be float32 (B, D) = (" + std::to_string(B) + ", " + std::to_string(D) + ")");
  }
  at::Tensor Mask;
  if (mask != nullptr) Mask = tensor_of(mask).to(at::kBool).expand({B, 1, 1, S}).reshape({B, S}).contiguous();
  const bool* mp = mask != nullptr ? Mask.data_ptr<bool>() : nullptr;
  const int64_t Nqkv = (Hq + 2 * Hkv) * D;
  std::vector<LayerTensors> ls(static_cast<size_t>(n));
  int64_t F = 0;
  for (int i = 0; i < n; i++) {
    const pt_decode_layer& L = layers[i];
    LayerTensors& t = ls[static_cast<size_t>(i)];
    t.in_norm = float_vector(L.input_norm, C, "input norm");
    t.post_norm = float_vector(L.post_norm, C, "post-attention norm");
    if ((L.q_norm == nullptr) != (L.k_norm == nullptr)) throw std::invalid_argument("decode layers: a query norm needs a key norm");
    if (L.q_norm != nullptr) {
      t.q_norm = float_vector(L.q_norm, D, "query norm");
      t.k_norm = float_vector(L.k_norm, D, "key norm");
    }
    t.qkv = decode_weight_of(L.qkv, Nqkv, C, "q/k/v", t.held);
    t.o = decode_weight_of(L.o, C, Hq * D, "output", t.held + 6);
    t.gate_up = decode_weight_of(L.gate_up, 0, C, "gate/up", t.held + 12);
    const int64_t N2 = t.gate_up.N;
    t.down = decode_weight_of(L.down, C, N2 / 2, "down", t.held + 18);
    F = N2 / 2;
    t.keys = tensor_of(L.keys);
    t.values = tensor_of(L.values);
    for (const at::Tensor* c : {&t.keys, &t.values}) {
      if (c->dim() != 4 || c->size(0) != B || c->size(1) != Hkv || c->size(3) != D || c->size(2) <= slot ||
          c->scalar_type() != at::kFloat || !c->is_contiguous() || !c->device().is_cpu()) {
        throw std::invalid_argument("decode layers: a cache must be contiguous float32 (B, Hkv, Cap > slot, D) = (" + std::to_string(B) +
                                    ", " + std::to_string(Hkv) + ", > " + std::to_string(slot) + ", " + std::to_string(D) + "), got " +
                                    c10::str(c->sizes()));
      }
    }
  }
  at::Tensor Y = X0.contiguous().clone();
  float* xp = Y.data_ptr<float>();
  std::vector<float> h(static_cast<size_t>(B * C)), qkv(static_cast<size_t>(B * Nqkv)), att(static_cast<size_t>(B * Hq * D)),
      proj(static_cast<size_t>(B * C)), gu(static_cast<size_t>(B * 2 * F)), act(static_cast<size_t>(B * F));
#if defined(__x86_64__)
  const bool avx2 = cpu_has_avx2_fma();
#else
  const bool avx2 = false;
#endif
  Scratch scratch;
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  const float *cp = Cos.data_ptr<float>(), *sp = Sin.data_ptr<float>();
  for (int i = 0; i < n; i++) {
    LayerTensors& t = ls[static_cast<size_t>(i)];
    rms_norm_rows(xp, t.in_norm.data_ptr<float>(), B, C, eps, h.data());
    qmatmul(h.data(), B, t.qkv, qkv.data(), scratch);
    const int64_t cap = t.keys.size(2);
    float *kc = t.keys.data_ptr<float>(), *vc = t.values.data_ptr<float>();
    for (int64_t b = 0; b < B; b++) {
      float* row = qkv.data() + b * Nqkv;
      if (t.q_norm.defined()) {  // each head's queries and keys normalised, in place
        for (int64_t hh = 0; hh < Hq + Hkv; hh++)
          rms_norm_rows(row + hh * D, (hh < Hq ? t.q_norm : t.k_norm).data_ptr<float>(), 1, D, eps, row + hh * D);
      }
      for (int64_t hh = 0; hh < Hq + Hkv; hh++) rope_head(row + hh * D, cp + b * D, sp + b * D, D);  // q heads, then k heads
      for (int64_t g = 0; g < Hkv; g++) {
        std::memcpy(kc + ((b * Hkv + g) * cap + slot) * D, row + (Hq + g) * D, sizeof(float) * D);
        std::memcpy(vc + ((b * Hkv + g) * cap + slot) * D, row + (Hq + Hkv + g) * D, sizeof(float) * D);
      }
    }
    // each query head of each row attends on its own: the heads split among the threads
    const float* qp = qkv.data();
    at::parallel_for(0, B * Hq, std::max<int64_t>(1, (int64_t(1) << 14) / (S * D)), [&](int64_t i0, int64_t i1) {
      std::vector<float> p(static_cast<size_t>(S));
      for (int64_t i = i0; i < i1; i++) {
        const int64_t b = i / Hq, hq = i % Hq, g = hq / (Hq / Hkv);
        attend(qp + b * Nqkv + hq * D, kc + (b * Hkv + g) * cap * D, vc + (b * Hkv + g) * cap * D, mp != nullptr ? mp + b * S : nullptr,
               S, D, scale, p.data(), att.data() + (b * Hq + hq) * D, avx2);
      }
    });
    qmatmul(att.data(), B, t.o, proj.data(), scratch);
    for (int64_t k = 0; k < B * C; k++) xp[k] += proj[k];
    rms_norm_rows(xp, t.post_norm.data_ptr<float>(), B, C, eps, h.data());
    qmatmul(h.data(), B, t.gate_up, gu.data(), scratch);
    at::parallel_for(0, B * F, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) {
        const int64_t b = i / F, f = i % F;
        const float g = gu[b * 2 * F + f], u = gu[b * 2 * F + F + f];
        act[i] = g / (1.0f + std::exp(-g)) * u;
      }
    });
    qmatmul(act.data(), B, t.down, proj.data(), scratch);
    for (int64_t k = 0; k < B * C; k++) xp[k] += proj[k];
  }
  *out = wrap_tensor(Y);
  PT_CATCH
}

}  // extern "C"
