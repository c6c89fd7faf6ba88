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

namespace pt_internal {
// cpu_has_avx2_fma reports whether the kernels' AVX2 routes may run here.
inline bool cpu_has_avx2_fma() {
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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
}  // namespace pt_internal
#endif
