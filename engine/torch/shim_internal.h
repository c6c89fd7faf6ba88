// shim_internal.h — what the binding's C++ files other than shim.cpp share with it: the
// tensor behind a handle, a new handle, and the exception-to-message convention of every
// entry point (see shim.cpp).
#pragma once

#include <ATen/ATen.h>

#include <exception>

#include "shim.h"

namespace pt_internal {
at::Tensor& tensor_of(pt_tensor t);  // throws on a null handle
pt_tensor wrap_tensor(at::Tensor t);  // a new handle, counted as live
pt_err error_of(const char* msg);     // a malloc'ed copy of msg
}  // namespace pt_internal

#define PT_INTERNAL_TRY try {
#define PT_INTERNAL_CATCH                                        \
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
