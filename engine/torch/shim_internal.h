// shim_internal.h — what the binding's C++ files (shim.cpp, quant.cpp) share: the tensor
// behind a handle, a new handle, the exception-to-message convention of every entry
// point, and the x86 helpers of their kernels.
#pragma once

#include <ATen/ATen.h>

#include <exception>

#include "shim.h"

namespace pt_internal {
at::Tensor& tensor_of(pt_tensor t);  // throws on a null handle
pt_tensor wrap_tensor(at::Tensor t);  // a new handle, counted as live
pt_err error_of(const char* msg);     // a malloc'ed copy of msg
}  // namespace pt_internal

// Every entry point catches every exception and returns it as a message; c10::Error
// messages carry a C++ backtrace in what(): only the message is kept.
#define PT_TRY try {
#define PT_CATCH                                                 \
  }                                                              \
  catch (const c10::Error& e) {                                  \
    return pt_internal::error_of(e.what_without_backtrace());    \
  }                                                              \
  catch (const std::exception& e) {                              \
    return pt_internal::error_of(e.what());                      \
  }                                                              \
  catch (...) {                                                  \
    return pt_internal::error_of("unknown C++ exception");       \
  }                                                              \
  return nullptr;

#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>

namespace pt_internal {
// cpu_has_avx2_fma reports whether the kernels' AVX2 routes may run here.
inline bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok;
}

// cpu_has_avx512f reports whether the AVX-512 routes may run here (PIONEER_NO_AVX512=1 in
// the environment turns them off, to compare).
inline bool cpu_has_avx512f() {
  static const bool ok = __builtin_cpu_supports("avx512f") && cpu_has_avx2_fma() && std::getenv("PIONEER_NO_AVX512") == nullptr;
  return ok;
}

// hsum8 is the sum of v's eight lanes.
__attribute__((target("avx2,fma"))) inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}

// dot_row is Σ_k x[k]·w[k] over K values, for a product of one row of input with a
// matrix, read one row of w after the other: four chains of sums over consecutive runs
// of 32 weights, so that the matrix is read as one forward stream. Reading four rows of
// w side by side instead (four streams a row's length apart) read the 540 MB of a
// float32 SmolLM2-135M at 22-25 GB/s with two threads on a 2-core machine of ours, one
// row at a time at 30-33 GB/s (and one thread at 15 against 28 GB/s).
__attribute__((target("avx2,fma"))) inline float dot_row(const float* x, const float* w, int64_t K) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 8), _mm256_loadu_ps(x + k + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 16), _mm256_loadu_ps(x + k + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k + 24), _mm256_loadu_ps(x + k + 24), a3);
  }
  for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), a0);
  float t = hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; k < K; k++) t += x[k] * w[k];
  return t;
}

// kWide is how many rows of w dots_avx512 takes at a time.
constexpr int kWide = 6;

// dots_avx512 writes out[r][c] = Σ_k x[r·K + k]·w[c][k] for R (1 to 4) rows of x and the
// kWide rows of w: each 16 weights of the six loaded once and multiplied with every row
// of x, the 6R sums in registers of their own (24 of the 32 at R = 4, the six weights'
// and x's in the others).
template <int R>
__attribute__((target("avx512f,avx2,fma"))) inline void dots_avx512(const float* x, int64_t K, const float* const* w, float out[][kWide]) {
  __m512 a[R][kWide];
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
#pragma GCC unroll 6
    for (int c = 0; c < kWide; c++) a[r][c] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 wv[kWide];
#pragma GCC unroll 6
    for (int c = 0; c < kWide; c++) wv[c] = _mm512_loadu_ps(w[c] + k);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
      const __m512 xv = _mm512_loadu_ps(x + r * K + k);
#pragma GCC unroll 6
      for (int c = 0; c < kWide; c++) a[r][c] = _mm512_fmadd_ps(wv[c], xv, a[r][c]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; r++) {
#pragma GCC unroll 6
    for (int c = 0; c < kWide; c++) {
      float t = _mm512_reduce_add_ps(a[r][c]);
      for (int64_t j = k; j < K; j++) t += x[r * K + j] * w[c][j];
      out[r][c] = t;
    }
  }
}

// rows_by_six_avx512 writes y[m][n] = x[m]·w[n] + bias[n] for m in [m0, m1) and n in
// [n0, n1) (y of N columns): kWide rows of w at a time (row_of(n, &bias) gives row n and
// its bias), taken by four rows of x at a time while in the cache (dots_avx512), the last
// rows of x one by one.
template <typename RowOf>
__attribute__((target("avx512f,avx2,fma"))) inline void rows_by_six_avx512(const float* x, int64_t m0, int64_t m1, int64_t K, int64_t N,
                                                                           int64_t n0, int64_t n1, float* y, RowOf row_of) {
  constexpr int C = kWide;
  for (int64_t n = n0; n < n1; n += C) {
    const int cols = static_cast<int>(std::min<int64_t>(C, n1 - n));
    float bias[C];
    const float* wr[C];
    for (int c = 0; c < C; c++) wr[c] = row_of(n + std::min(c, cols - 1), &bias[c]);
    float out[4][C];
    int64_t m = m0;
    for (; m + 4 <= m1; m += 4) {
      dots_avx512<4>(x + m * K, K, wr, out);
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < cols; c++) y[(m + r) * N + n + c] = out[r][c] + bias[c];
    }
    for (; m < m1; m++) {
      dots_avx512<1>(x + m * K, K, wr, out);
      for (int c = 0; c < cols; c++) y[m * N + n + c] = out[0][c] + bias[c];
    }
  }
}
}  // namespace pt_internal
#endif
