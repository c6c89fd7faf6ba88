// shim.cpp — implementation of shim.h over the ATen C++ API.
//
// Rules kept throughout: every entry point catches every exception and returns it as a
// message; handles are heap-allocated at::Tensor objects counted in live_tensors so tests
// can prove nothing leaks.
#include "shim.h"
#include "shim_internal.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <dlfcn.h>
#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#if __has_include(<torch/headeronly/version.h>)
#include <torch/headeronly/version.h>
#elif __has_include(<torch/csrc/api/include/torch/version.h>)
#include <torch/csrc/api/include/torch/version.h>
#endif

// Implemented in Go (blob.go): releases the Go memory behind a from_blob tensor.
extern "C" void pioneerReleaseBlob(int64_t id);

struct pt_generator_s {
  at::Generator gen;
};

namespace {

std::atomic<int64_t> live_tensors{0};

pt_err dup_err(const char* msg) {
  size_t n = std::strlen(msg);
  char* out = static_cast<char*>(std::malloc(n + 1));
  if (out != nullptr) std::memcpy(out, msg, n + 1);
  return out;
}

inline at::Tensor& T(pt_tensor t) {
  if (t == nullptr) throw std::invalid_argument("null tensor handle");
  return *reinterpret_cast<at::Tensor*>(t);
}

inline pt_tensor wrap(at::Tensor t) {
  auto* p = new at::Tensor(std::move(t));
  live_tensors.fetch_add(1, std::memory_order_relaxed);
  return reinterpret_cast<pt_tensor>(p);
}

inline at::IntArrayRef dims(const int64_t* p, int n) { return at::IntArrayRef(p, static_cast<size_t>(n)); }

at::Device device_of(int32_t type, int32_t index) {
  switch (type) {
    case 0:
      return at::Device(at::kCPU);
    case 1:
      return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index < 0 ? 0 : index));
    default:
      throw std::invalid_argument("unknown device type " + std::to_string(type));
  }
}

at::ScalarType dtype_of(int32_t d) {
  switch (static_cast<at::ScalarType>(d)) {
    case at::kByte:
    case at::kChar:
    case at::kShort:
    case at::kInt:
    case at::kLong:
    case at::kHalf:
    case at::kFloat:
    case at::kDouble:
    case at::kBool:
    case at::kBFloat16:
      return static_cast<at::ScalarType>(d);
    default:
      throw std::invalid_argument("unsupported dtype code " + std::to_string(d));
  }
}

at::TensorOptions options(int32_t dtype, int32_t device_type, int32_t device_index) {
  return at::TensorOptions().dtype(dtype_of(dtype)).device(device_of(device_type, device_index));
}

std::optional<at::Generator> gen_of(pt_generator g) {
  if (g == nullptr) return std::nullopt;
  return g->gen;
}

std::vector<at::Tensor> tensors_of(const pt_tensor* ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}

std::vector<int64_t> all_dims(const at::Tensor& a) {
  std::vector<int64_t> d(static_cast<size_t>(a.dim()));
  for (int64_t i = 0; i < a.dim(); i++) d[static_cast<size_t>(i)] = i;
  return d;
}

std::string cuda_message;

}  // namespace

// For the other files of the binding (shim_internal.h).
namespace pt_internal {
at::Tensor& tensor_of(pt_tensor t) { return T(t); }
pt_tensor wrap_tensor(at::Tensor t) { return wrap(std::move(t)); }
pt_err error_of(const char* msg) { return dup_err(msg); }
}  // namespace pt_internal

extern "C" {

void pt_init(char** cuda_msg) {
  // Find the directory of libtorch_cpu.so and load libtorch_cuda.so from beside it, so the
  // CUDA kernels register with the dispatcher. RTLD_GLOBAL: its symbols serve later loads.
  std::string msg;
  Dl_info info;
  void* handle = nullptr;
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info) != 0 && info.dli_fname != nullptr) {
    std::string path(info.dli_fname);
    auto slash = path.rfind('/');
    if (slash != std::string::npos) {
      std::string candidate = path.substr(0, slash + 1) + "libtorch_cuda.so";
      handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_GLOBAL);
      if (handle == nullptr) {
        const char* e = dlerror();
        msg = e != nullptr ? e : "dlopen failed";
      }
    }
  }
  if (handle == nullptr) {
    handle = dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr && msg.empty()) {
      const char* e = dlerror();
      msg = e != nullptr ? e : "dlopen failed";
    }
  }
  if (handle != nullptr) {
    msg.clear();
    try {
      if (at::detail::getCUDAHooks().getNumGPUs() == 0) msg = "libtorch_cuda loaded but no CUDA device is visible";
    } catch (const std::exception& e) {
      msg = e.what();
    }
  }
  cuda_message = msg;
  if (cuda_msg != nullptr) *cuda_msg = msg.empty() ? nullptr : dup_err(msg.c_str());
}

int pt_cuda_device_count(void) {
  try {
    return at::detail::getCUDAHooks().getNumGPUs();
  } catch (...) {
    return 0;
  }
}

int64_t pt_live_tensors(void) { return live_tensors.load(); }

void pt_free_err(pt_err e) { std::free(e); }

void pt_free(pt_tensor t) {
  if (t == nullptr) return;
  delete reinterpret_cast<at::Tensor*>(t);
  live_tensors.fetch_sub(1, std::memory_order_relaxed);
}

void pt_set_num_threads(int n) { at::set_num_threads(n); }
int pt_get_num_threads(void) { return at::get_num_threads(); }

int pt_thread_set_num_threads(int n) {
  // ATen sets a thread's OpenMP count from the process-wide one the first time the thread
  // asks for it; asking first means that cannot later undo what follows.
  const int prev = at::get_num_threads();
  omp_set_num_threads(n);
  // MKL is linked into libtorch_cpu on x86-64 only; its per-thread count overrides the
  // process-wide one that at::set_num_threads sets. libtorch exports the Fortran-style
  // entry point (the count by pointer); the C names are aliases of it.
  using set_local = int (*)(const int*);
  static const auto mkl_local = reinterpret_cast<set_local>(dlsym(RTLD_DEFAULT, "mkl_set_num_threads_local_"));
  if (mkl_local != nullptr) mkl_local(&n);
  return prev;
}
void pt_manual_seed(uint64_t seed) {
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
  int n = pt_cuda_device_count();
  for (int i = 0; i < n; i++) {
    auto gen = at::detail::getCUDAHooks().getDefaultGenerator(static_cast<c10::DeviceIndex>(i));
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(seed);
  }
}

pt_err pt_synchronize(int32_t device_type, int32_t device_index) {
  PT_TRY
  if (device_type == 1) at::detail::getCUDAHooks().deviceSynchronize(static_cast<c10::DeviceIndex>(device_index < 0 ? 0 : device_index));
  PT_CATCH
}

pt_err pt_version(char** out) {
  PT_TRY
#ifdef TORCH_VERSION_MAJOR
  std::string v = std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
                  std::to_string(TORCH_VERSION_PATCH);
#else
  std::string v = "unknown";
#endif
  *out = dup_err(v.c_str());
  PT_CATCH
}

// ---- generators ---------------------------------------------------------------------

pt_err pt_generator_new(uint64_t seed, int32_t device_type, int32_t device_index, pt_generator* out) {
  PT_TRY
  at::Generator g;
  if (device_type == 0) {
    g = at::detail::createCPUGenerator(seed);
  } else {
    auto dev = device_of(device_type, device_index);
    g = at::detail::getCUDAHooks().getNewGenerator(dev.index());
    g.set_current_seed(seed);
  }
  *out = new pt_generator_s{std::move(g)};
  PT_CATCH
}

void pt_generator_free(pt_generator g) { delete g; }

pt_err pt_generator_get_state(pt_generator g, pt_tensor* out) {
  PT_TRY
  std::lock_guard<std::mutex> lock(g->gen.mutex());
  *out = wrap(g->gen.get_state());
  PT_CATCH
}

pt_err pt_generator_set_state(pt_generator g, pt_tensor state) {
  PT_TRY
  std::lock_guard<std::mutex> lock(g->gen.mutex());
  g->gen.set_state(T(state));
  PT_CATCH
}

// ---- creation -----------------------------------------------------------------------

pt_err pt_from_blob(void* data, const int64_t* shape, int ndim, int32_t dtype, int64_t release_id, pt_tensor* out) {
  PT_TRY
  auto opts = at::TensorOptions().dtype(dtype_of(dtype));
  *out = wrap(at::from_blob(data, dims(shape, ndim), [release_id](void*) { pioneerReleaseBlob(release_id); }, opts));
  PT_CATCH
}

pt_err pt_from_copy(const void* data, int64_t nbytes, const int64_t* shape, int ndim, int32_t dtype,
                    int32_t device_type, int32_t device_index, pt_tensor* out) {
  PT_TRY
  auto t = at::empty(dims(shape, ndim), at::TensorOptions().dtype(dtype_of(dtype)));
  if (static_cast<int64_t>(t.nbytes()) != nbytes) {
    throw std::invalid_argument("data has " + std::to_string(nbytes) + " bytes but shape " +
                                c10::str(t.sizes()) + " of " + std::string(c10::toString(t.scalar_type())) +
                                " needs " + std::to_string(t.nbytes()));
  }
  if (nbytes > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(nbytes));
  auto dev = device_of(device_type, device_index);
  *out = wrap(dev.is_cpu() ? t : t.to(dev));
  PT_CATCH
}

pt_err pt_full(const int64_t* shape, int ndim, double value, int32_t dtype, int32_t device_type,
               int32_t device_index, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::full(dims(shape, ndim), value, options(dtype, device_type, device_index)));
  PT_CATCH
}

pt_err pt_randn(const int64_t* shape, int ndim, int32_t dtype, int32_t device_type, int32_t device_index,
                pt_generator g, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::randn(dims(shape, ndim), gen_of(g), options(dtype, device_type, device_index)));
  PT_CATCH
}

pt_err pt_rand(const int64_t* shape, int ndim, int32_t dtype, int32_t device_type, int32_t device_index,
               pt_generator g, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::rand(dims(shape, ndim), gen_of(g), options(dtype, device_type, device_index)));
  PT_CATCH
}

pt_err pt_arange(double start, double end, double step, int32_t dtype, int32_t device_type,
                 int32_t device_index, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::arange(start, end, step, options(dtype, device_type, device_index)));
  PT_CATCH
}

// ---- metadata and transfer --------------------------------------------------------------

pt_err pt_info(pt_tensor t, pt_tensor_info* out) {
  PT_TRY
  const auto& a = T(t);
  out->defined = a.defined() ? 1 : 0;
  if (!a.defined()) return nullptr;
  if (a.dim() > PT_MAX_DIMS) throw std::invalid_argument("tensor has more than 16 dimensions");
  out->dim = static_cast<int32_t>(a.dim());
  for (int64_t i = 0; i < a.dim(); i++) out->sizes[i] = a.size(i);
  out->dtype = static_cast<int32_t>(a.scalar_type());
  out->device_type = a.is_cuda() ? 1 : (a.is_cpu() ? 0 : 99);
  out->device_index = a.device().has_index() ? a.device().index() : -1;
  out->requires_grad = a.requires_grad() ? 1 : 0;
  PT_CATCH
}

pt_err pt_to(pt_tensor t, int32_t dtype, int32_t device_type, int32_t device_index, pt_tensor* out) {
  PT_TRY
  *out = wrap(T(t).to(device_of(device_type, device_index), dtype_of(dtype)));
  PT_CATCH
}

pt_err pt_copy_out(pt_tensor t, void* dst, int64_t nbytes) {
  PT_TRY
  auto c = T(t).detach().cpu().contiguous();
  if (static_cast<int64_t>(c.nbytes()) != nbytes) {
    throw std::invalid_argument("destination has " + std::to_string(nbytes) + " bytes, tensor has " +
                                std::to_string(c.nbytes()));
  }
  if (nbytes > 0) std::memcpy(dst, c.data_ptr(), static_cast<size_t>(nbytes));
  PT_CATCH
}

pt_err pt_item(pt_tensor t, double* out) {
  PT_TRY
  *out = T(t).item().toDouble();
  PT_CATCH
}

// ---- operations by code -----------------------------------------------------------------

pt_err pt_unary(int op, pt_tensor a_, pt_tensor* out) {
  PT_TRY
  const auto& a = T(a_);
  at::Tensor r;
  switch (op) {
    case PT_NEG: r = at::neg(a); break;
    case PT_EXP: r = at::exp(a); break;
    case PT_LOG: r = at::log(a); break;
    case PT_SQRT: r = at::sqrt(a); break;
    case PT_RSQRT: r = at::rsqrt(a); break;
    case PT_ABS: r = at::abs(a); break;
    case PT_TANH: r = at::tanh(a); break;
    case PT_SIGMOID: r = at::sigmoid(a); break;
    case PT_RELU: r = at::relu(a); break;
    case PT_SILU: r = at::silu(a); break;
    case PT_GELU: r = at::gelu(a); break;
    case PT_GELU_TANH: r = at::gelu(a, "tanh"); break;
    case PT_SIN: r = at::sin(a); break;
    case PT_COS: r = at::cos(a); break;
    case PT_SQUARE: r = at::square(a); break;
    case PT_RECIPROCAL: r = at::reciprocal(a); break;
    case PT_LOGICAL_NOT: r = at::logical_not(a); break;
    case PT_CONTIGUOUS: r = a.contiguous(); break;
    case PT_CLONE: r = a.clone(); break;
    case PT_DETACH: r = a.detach(); break;
    case PT_SUM_ALL: r = a.sum(); break;
    case PT_MEAN_ALL: r = a.mean(); break;
    case PT_FLOOR: r = at::floor(a); break;
    case PT_ISFINITE: r = at::isfinite(a); break;
    default: throw std::invalid_argument("unknown unary op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  PT_CATCH
}

pt_err pt_binary(int op, pt_tensor a_, pt_tensor b_, pt_tensor* out) {
  PT_TRY
  const auto& a = T(a_);
  const auto& b = T(b_);
  at::Tensor r;
  switch (op) {
    case PT_ADD: r = at::add(a, b); break;
    case PT_SUB: r = at::sub(a, b); break;
    case PT_MUL: r = at::mul(a, b); break;
    case PT_DIV: r = at::div(a, b); break;
    case PT_POW: r = at::pow(a, b); break;
    case PT_MAXIMUM: r = at::maximum(a, b); break;
    case PT_MINIMUM: r = at::minimum(a, b); break;
    case PT_EQ: r = at::eq(a, b); break;
    case PT_NE: r = at::ne(a, b); break;
    case PT_LT: r = at::lt(a, b); break;
    case PT_LE: r = at::le(a, b); break;
    case PT_GT: r = at::gt(a, b); break;
    case PT_GE: r = at::ge(a, b); break;
    case PT_LOGICAL_AND: r = at::logical_and(a, b); break;
    case PT_LOGICAL_OR: r = at::logical_or(a, b); break;
    case PT_MATMUL: r = at::matmul(a, b); break;
    default: throw std::invalid_argument("unknown binary op " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  PT_CATCH
}

pt_err pt_binary_scalar(int op, pt_tensor a_, double b, pt_tensor* out) {
  PT_TRY
  const auto& a = T(a_);
  at::Tensor r;
  switch (op) {
    case PT_ADD: r = at::add(a, b); break;
    case PT_SUB: r = at::sub(a, b); break;
    case PT_MUL: r = at::mul(a, b); break;
    case PT_DIV: r = at::div(a, b); break;
    case PT_POW: r = at::pow(a, b); break;
    case PT_MAXIMUM: r = at::clamp_min(a, b); break;
    case PT_MINIMUM: r = at::clamp_max(a, b); break;
    case PT_EQ: r = at::eq(a, b); break;
    case PT_NE: r = at::ne(a, b); break;
    case PT_LT: r = at::lt(a, b); break;
    case PT_LE: r = at::le(a, b); break;
    case PT_GT: r = at::gt(a, b); break;
    case PT_GE: r = at::ge(a, b); break;
    default: throw std::invalid_argument("binary op " + std::to_string(op) + " has no scalar form");
  }
  *out = wrap(std::move(r));
  PT_CATCH
}

pt_err pt_reduce(int op, pt_tensor a_, const int64_t* d, int nd, int keepdim, pt_tensor* out) {
  PT_TRY
  const auto& a = T(a_);
  std::vector<int64_t> ds = nd > 0 ? std::vector<int64_t>(d, d + nd) : all_dims(a);
  bool keep = keepdim != 0;
  at::Tensor r;
  switch (op) {
    case PT_SUM: r = at::sum(a, ds, keep); break;
    case PT_MEAN: r = at::mean(a, ds, keep); break;
    case PT_AMAX: r = at::amax(a, ds, keep); break;
    case PT_AMIN: r = at::amin(a, ds, keep); break;
    case PT_LOGSUMEXP: r = at::logsumexp(a, ds, keep); break;
    case PT_VAR: r = at::var(a, at::OptionalIntArrayRef(ds), /*correction=*/at::Scalar(0), keep); break;
    default: throw std::invalid_argument("unknown reduction " + std::to_string(op));
  }
  *out = wrap(std::move(r));
  PT_CATCH
}

pt_err pt_argmax(pt_tensor a, int64_t dim, int keepdim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::argmax(T(a), dim, keepdim != 0));
  PT_CATCH
}

pt_err pt_topk(pt_tensor a, int64_t k, int64_t dim, pt_tensor* values, pt_tensor* indices) {
  PT_TRY
  auto r = at::topk(T(a), k, dim);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  PT_CATCH
}

pt_err pt_sort(pt_tensor a, int64_t dim, int descending, pt_tensor* values, pt_tensor* indices) {
  PT_TRY
  auto r = at::sort(T(a), dim, descending != 0);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  PT_CATCH
}

pt_err pt_cumsum(pt_tensor a, int64_t dim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::cumsum(T(a), dim));
  PT_CATCH
}

// ---- shape --------------------------------------------------------------------------

pt_err pt_reshape(pt_tensor a, const int64_t* shape, int ndim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::reshape(T(a), dims(shape, ndim)));
  PT_CATCH
}

pt_err pt_expand(pt_tensor a, const int64_t* shape, int ndim, pt_tensor* out) {
  PT_TRY
  *out = wrap(T(a).expand(dims(shape, ndim)));
  PT_CATCH
}

pt_err pt_permute(pt_tensor a, const int64_t* d, int ndim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::permute(T(a), dims(d, ndim)));
  PT_CATCH
}

pt_err pt_transpose(pt_tensor a, int64_t d0, int64_t d1, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::transpose(T(a), d0, d1));
  PT_CATCH
}

pt_err pt_slice(pt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::slice(T(a), dim, start, end, step));
  PT_CATCH
}

pt_err pt_select(pt_tensor a, int64_t dim, int64_t index, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::select(T(a), dim, index));
  PT_CATCH
}

pt_err pt_unsqueeze(pt_tensor a, int64_t dim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::unsqueeze(T(a), dim));
  PT_CATCH
}

pt_err pt_squeeze(pt_tensor a, int64_t dim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::squeeze(T(a), dim));
  PT_CATCH
}

pt_err pt_cat(const pt_tensor* ts, int n, int64_t dim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::cat(tensors_of(ts, n), dim));
  PT_CATCH
}

pt_err pt_stack(const pt_tensor* ts, int n, int64_t dim, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::stack(tensors_of(ts, n), dim));
  PT_CATCH
}

pt_err pt_index_select(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::index_select(T(a), dim, T(index)));
  PT_CATCH
}

pt_err pt_index_add(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor source, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::index_add(T(a), dim, T(index), T(source)));
  PT_CATCH
}

pt_err pt_gather(pt_tensor a, int64_t dim, pt_tensor index, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::gather(T(a), dim, T(index)));
  PT_CATCH
}

pt_err pt_where(pt_tensor cond, pt_tensor a, pt_tensor b, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::where(T(cond), T(a), T(b)));
  PT_CATCH
}

pt_err pt_masked_fill(pt_tensor a, pt_tensor mask, double value, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::masked_fill(T(a), T(mask), value));
  PT_CATCH
}

pt_err pt_clamp(pt_tensor a, double lo, double hi, int has_lo, int has_hi, pt_tensor* out) {
  PT_TRY
  std::optional<at::Scalar> l, h;
  if (has_lo) l = lo;
  if (has_hi) h = hi;
  *out = wrap(at::clamp(T(a), l, h));
  PT_CATCH
}

pt_err pt_tril(pt_tensor a, int64_t diagonal, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::tril(T(a), diagonal));
  PT_CATCH
}

// ---- neural network ---------------------------------------------------------------------

// cpu_float32_product reports whether x·wᵀ is a float32 product on the CPU of a matrix w
// with at least min_weight values: where the routes below may apply.
static bool cpu_float32_product(const at::Tensor& x, const at::Tensor& w, int64_t min_weight) {
  return x.device().is_cpu() && w.device().is_cpu() && x.scalar_type() == at::kFloat &&
         w.scalar_type() == at::kFloat && w.dim() == 2 && x.dim() >= 1 && w.numel() >= min_weight;
}

// few_rows_product reports whether x·wᵀ is better computed as (w·xᵀ)ᵀ: a float32 product
// on the CPU of a large weight (at least 1M values, 128 or more per row) with 2 to 32
// rows of input, as in batched decoding. For these shapes the CPU GEMM runs 1.2 to 3x
// faster in that orientation (2 AVX2 cores, MKL: a 151936 x 896 head at 16 rows took 107
// ms instead of 169 ms); for 64 rows or rows of 64 values it runs slower. The sums are the
// same products in another order. Without a gradient to record, rows_times_weight below
// (x86 with AVX2) comes first; this orientation serves the rest.
static bool few_rows_product(const at::Tensor& x, const at::Tensor& w) {
  if (!cpu_float32_product(x, w, 1 << 20)) {
    return false;
  }
  int64_t k = x.size(-1);
  if (k < 128 || k != w.size(1)) return false;
  int64_t rows = x.numel() / k;
  return rows >= 2 && rows <= 32;
}

#if defined(__x86_64__)
#include <immintrin.h>

// Decoding multiplies a few rows of input by large weights, and there the CPU GEMM spends
// as long re-laying the weight out as multiplying (perf: MKL's sgemm copy routine took 38 %
// of a Qwen2.5-0.5B-shaped decode at batch 16, its kernel 35 %). rows_times_weight
// computes y = x·wᵀ for 1 to 64 rows straight from w's rows: dot products of three rows of
// w with four rows of x at a time, eight values wide, so each row of w is read from memory
// once per call and used from cache for every row of x. On 2 AVX2 cores it runs the
// 0.5B model's projections 1.8 to 2.6x faster than MKL at 16 rows and 1.8 to 2.3x at one
// row. It is used only where nothing needs a gradient.

using pt_internal::hsum8;

// rows_times_weight_range writes y[m][n] = Σ_k x[m][k]·w[n][k] for n in [n0, n1), all m.
__attribute__((target("avx2,fma"))) static void rows_times_weight_range(
    const float* x, const float* w, float* y, int64_t M, int64_t N, int64_t K, int64_t n0, int64_t n1) {
  if (M == 1) {  // one row of w after the other: w read as one stream (dot_row)
    for (int64_t n = n0; n < n1; n++) y[n] = pt_internal::dot_row(x, w + n * K, K);
    return;
  }
  if (M >= 4 && pt_internal::cpu_has_avx512f()) {  // six rows of w by four of x (shim_internal.h)
    pt_internal::rows_by_six_avx512(x, 0, M, K, N, n0, n1, y, [w, K](int64_t n, float* bias) {
      *bias = 0;
      return w + n * K;
    });
    return;
  }
  const int64_t K8 = K & ~int64_t(7);
  auto tail = [&](const float* xr, const float* wr) {  // the last K % 8 products
    float t = 0;
    for (int64_t k = K8; k < K; k++) t += xr[k] * wr[k];
    return t;
  };
  int64_t n = n0;
  for (; n + 3 <= n1; n += 3) {
    const float *w0 = w + n * K, *w1 = w0 + K, *w2 = w1 + K;
    int64_t m = 0;
    for (; m + 4 <= M; m += 4) {
      const float *x0 = x + m * K, *x1 = x0 + K, *x2 = x1 + K, *x3 = x2 + K;
      __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a10 = a00, a11 = a00, a12 = a00;
      __m256 a20 = a00, a21 = a00, a22 = a00, a30 = a00, a31 = a00, a32 = a00;
      for (int64_t k = 0; k < K8; k += 8) {
        __m256 v0 = _mm256_loadu_ps(w0 + k), v1 = _mm256_loadu_ps(w1 + k), v2 = _mm256_loadu_ps(w2 + k);
        __m256 u = _mm256_loadu_ps(x0 + k);
        a00 = _mm256_fmadd_ps(u, v0, a00), a01 = _mm256_fmadd_ps(u, v1, a01), a02 = _mm256_fmadd_ps(u, v2, a02);
        u = _mm256_loadu_ps(x1 + k);
        a10 = _mm256_fmadd_ps(u, v0, a10), a11 = _mm256_fmadd_ps(u, v1, a11), a12 = _mm256_fmadd_ps(u, v2, a12);
        u = _mm256_loadu_ps(x2 + k);
        a20 = _mm256_fmadd_ps(u, v0, a20), a21 = _mm256_fmadd_ps(u, v1, a21), a22 = _mm256_fmadd_ps(u, v2, a22);
        u = _mm256_loadu_ps(x3 + k);
        a30 = _mm256_fmadd_ps(u, v0, a30), a31 = _mm256_fmadd_ps(u, v1, a31), a32 = _mm256_fmadd_ps(u, v2, a32);
      }
      float* r = y + m * N + n;
      r[0] = hsum8(a00) + tail(x0, w0), r[1] = hsum8(a01) + tail(x0, w1), r[2] = hsum8(a02) + tail(x0, w2);
      r += N;
      r[0] = hsum8(a10) + tail(x1, w0), r[1] = hsum8(a11) + tail(x1, w1), r[2] = hsum8(a12) + tail(x1, w2);
      r += N;
      r[0] = hsum8(a20) + tail(x2, w0), r[1] = hsum8(a21) + tail(x2, w1), r[2] = hsum8(a22) + tail(x2, w2);
      r += N;
      r[0] = hsum8(a30) + tail(x3, w0), r[1] = hsum8(a31) + tail(x3, w1), r[2] = hsum8(a32) + tail(x3, w2);
    }
    for (; m < M; m++) {
      const float* x0 = x + m * K;
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0;
      for (int64_t k = 0; k < K8; k += 8) {
        __m256 u = _mm256_loadu_ps(x0 + k);
        a0 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w0 + k), a0);
        a1 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w1 + k), a1);
        a2 = _mm256_fmadd_ps(u, _mm256_loadu_ps(w2 + k), a2);
      }
      float* r = y + m * N + n;
      r[0] = hsum8(a0) + tail(x0, w0), r[1] = hsum8(a1) + tail(x0, w1), r[2] = hsum8(a2) + tail(x0, w2);
    }
  }
  for (; n < n1; n++) {  // the last one or two rows of w
    const float* w0 = w + n * K;
    for (int64_t m = 0; m < M; m++) {
      const float* x0 = x + m * K;
      __m256 a = _mm256_setzero_ps();
      for (int64_t k = 0; k < K8; k += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(x0 + k), _mm256_loadu_ps(w0 + k), a);
      y[m * N + n] = hsum8(a) + tail(x0, w0);
    }
  }
}

using pt_internal::cpu_has_avx2_fma;
#endif

// rows_times_weight computes x·wᵀ (+ b) with the kernel above and returns true, or returns
// false where it does not apply: not an x86 CPU with AVX2 and FMA, not float32 on the CPU,
// more than 64 rows, a small weight (under 64K values, where the GEMM's own overheads are
// small), or a gradient to record.
static bool rows_times_weight(const at::Tensor& X, const at::Tensor& W, const std::optional<at::Tensor>& bias,
                              at::Tensor* out) {
#if defined(__x86_64__)
  if (!cpu_has_avx2_fma() || !cpu_float32_product(X, W, 1 << 16)) {
    return false;
  }
  if (at::GradMode::is_enabled() && (X.requires_grad() || W.requires_grad() || (bias && bias->requires_grad()))) {
    return false;
  }
  const int64_t K = X.size(-1), N = W.size(0);
  if (K == 0 || K != W.size(1)) return false;
  const int64_t M = X.numel() / K;
  if (M < 1 || M > 64) return false;
  if (bias && (bias->dim() != 1 || bias->size(0) != N || bias->scalar_type() != at::kFloat || !bias->device().is_cpu())) {
    return false;
  }
  at::Tensor x = X.reshape({M, K}).contiguous(), w = W.contiguous();
  std::vector<int64_t> shape(X.sizes().begin(), X.sizes().end());
  shape.back() = N;
  at::Tensor y = at::empty({M, N}, X.options());
  const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  // Threads take runs of three rows of w; a run of at least 32K weights each.
  const int64_t blocks = (N + 2) / 3;
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / (3 * K));
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    rows_times_weight_range(xp, wp, yp, M, N, K, b0 * 3, std::min(N, b1 * 3));
  });
  if (bias) y.add_(*bias);
  *out = y.view(shape);
  return true;
#else
  return false;
#endif
}

// A language model's output projection has a vocabulary's worth of rows (32K to 152K)
// and a few hundred to a few thousand columns. For that shape at a few hundred rows of
// input, the CPU GEMM runs at half its speed on the decoder's own projections (2 AVX2
// cores, MKL: a 49152 x 576 head at 256 rows took 216 to 262 ms, 55 to 67 GFLOP/s,
// against 115 to 150 GFLOP/s for the layers' products). Computed as products with slices
// of kWideChunk rows of w, each written straight into its columns of the output, it took
// 110 to 140 ms. For the gradient of x, dy·w runs faster as (wᵀ·dyᵀ)ᵀ (110 against 140
// ms). WideLinear does both and keeps autograd's contract: the sums are the same products
// in another order.
constexpr int64_t kWideChunk = 1024;

// wide_product reports whether x·wᵀ is such a product: float32 on the CPU outside autocast,
// no bias, at least 16384 rows of w and at least 65 rows of input (fewer rows take the
// routes above).
static bool wide_product(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& bias) {
  if (bias.has_value() || !cpu_float32_product(x, w, 1 << 20) || at::autocast::is_autocast_enabled(at::kCPU)) {
    return false;
  }
  const int64_t k = x.size(-1);
  if (k == 0 || k != w.size(1) || w.size(0) < 16384) return false;
  return x.numel() / k > 64;
}

// wide_forward computes x·wᵀ for x (M, K) by slices of w's rows.
static at::Tensor wide_forward(const at::Tensor& x, const at::Tensor& w) {
  const int64_t N = w.size(0);
  at::Tensor y = at::empty({x.size(0), N}, x.options());
  for (int64_t n = 0; n < N; n += kWideChunk) {
    const int64_t c = std::min(kWideChunk, N - n);
    at::Tensor part = y.narrow(1, n, c);
    at::mm_out(part, x, w.narrow(0, n, c).t());
  }
  return y;
}

struct WideLinear : public torch::autograd::Function<WideLinear> {
  // x is (M, K), w (N, K); returns (M, N).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w) {
    ctx->save_for_backward({w.requires_grad() ? x : at::Tensor(), w});
    return wide_forward(x, w);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    at::Tensor dy = grads[0].contiguous();
    at::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) dx = at::mm(w.t(), dy.t()).t().contiguous();
    if (ctx->needs_input_grad(1)) dw = at::mm(dy.t(), x);
    return {dx, dw};
  }
};

// wide_linear computes x·wᵀ for x (…, K) through WideLinear.
static at::Tensor wide_linear(const at::Tensor& X, const at::Tensor& W) {
  const int64_t K = X.size(-1);
  std::vector<int64_t> shape(X.sizes().begin(), X.sizes().end());
  shape.back() = W.size(0);
  at::Tensor x = X.reshape({-1, K});
  at::Tensor y;
  if (at::GradMode::is_enabled() && (X.requires_grad() || W.requires_grad())) {
    y = WideLinear::apply(x, W);
  } else {
    y = wide_forward(x.contiguous(), W.contiguous());
  }
  return y.view(shape);
}

pt_err pt_linear(pt_tensor x, pt_tensor w, pt_tensor b, pt_tensor* out) {
  PT_TRY
  std::optional<at::Tensor> bias;
  if (b != nullptr) bias = T(b);
  const at::Tensor& X = T(x);
  const at::Tensor& W = T(w);
  at::Tensor y;
  if (rows_times_weight(X, W, bias, &y)) {
    *out = wrap(y);
  } else if (wide_product(X, W, bias)) {
    *out = wrap(wide_linear(X, W));
  } else if (!few_rows_product(X, W) || (bias.has_value() && bias->dim() != 1)) {
    *out = wrap(at::linear(X, W, bias));
  } else {
    int64_t k = X.size(-1);
    at::Tensor xt = X.reshape({-1, k}).t();
    at::Tensor yt = bias.has_value() ? at::addmm(bias->unsqueeze(1), W, xt) : at::mm(W, xt);
    std::vector<int64_t> shape(X.sizes().begin(), X.sizes().end());
    shape.back() = W.size(0);
    *out = wrap(yt.t().contiguous().view(shape));
  }
  PT_CATCH
}

pt_err pt_addmm(pt_tensor c, pt_tensor a, pt_tensor b, double beta, double alpha, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::addmm(T(c), T(a), T(b), beta, alpha));
  PT_CATCH
}

pt_err pt_embedding(pt_tensor weight, pt_tensor ids, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::embedding(T(weight), T(ids)));
  PT_CATCH
}

pt_err pt_softmax(pt_tensor a, int64_t dim, int log, pt_tensor* out) {
  PT_TRY
  *out = wrap(log ? at::log_softmax(T(a), dim) : at::softmax(T(a), dim));
  PT_CATCH
}

pt_err pt_rms_norm(pt_tensor x, pt_tensor w, double eps, pt_tensor* out) {
  PT_TRY
  const auto& a = T(x);
  std::optional<at::Tensor> weight;
  if (w != nullptr) weight = T(w);
  if (a.dim() == 0) throw std::invalid_argument("rms_norm of a 0-dimensional tensor");
  int64_t last = a.size(-1);
  *out = wrap(at::rms_norm(a, {last}, weight, eps));
  PT_CATCH
}

pt_err pt_layer_norm(pt_tensor x, pt_tensor w, pt_tensor b, double eps, pt_tensor* out) {
  PT_TRY
  const auto& a = T(x);
  std::optional<at::Tensor> weight, bias;
  if (w != nullptr) weight = T(w);
  if (b != nullptr) bias = T(b);
  if (a.dim() == 0) throw std::invalid_argument("layer_norm of a 0-dimensional tensor");
  int64_t last = a.size(-1);
  *out = wrap(at::layer_norm(a, {last}, weight, bias, eps));
  PT_CATCH
}

pt_err pt_rope(pt_tensor x_, pt_tensor cos_, pt_tensor sin_, pt_tensor* out) {
  PT_TRY
  const auto& x = T(x_);
  int64_t d = x.size(-1);
  if (d % 2 != 0) throw std::invalid_argument("rope: last dimension " + std::to_string(d) + " is odd");
  auto x1 = x.narrow(-1, 0, d / 2);
  auto x2 = x.narrow(-1, d / 2, d / 2);
  auto rotated = at::cat({at::neg(x2), x1}, -1);
  *out = wrap(x * T(cos_) + rotated * T(sin_));
  PT_CATCH
}

pt_err pt_sdpa(pt_tensor q_, pt_tensor k_, pt_tensor v_, pt_tensor mask, int causal, double dropout_p,
               double scale, pt_tensor* out) {
  PT_TRY
  const auto& q = T(q_);
  const auto& k = T(k_);
  const auto& v = T(v_);
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw std::invalid_argument("sdpa: q, k, v must be 4-D (B, H, T, D); got " + c10::str(q.sizes()) + ", " +
                                c10::str(k.sizes()) + ", " + c10::str(v.sizes()));
  }
  if (q.size(1) % k.size(1) != 0) {
    throw std::invalid_argument("sdpa: query heads " + std::to_string(q.size(1)) + " not a multiple of key heads " +
                                std::to_string(k.size(1)));
  }
  std::optional<at::Tensor> m;
  if (mask != nullptr) m = T(mask);
  std::optional<double> s;
  if (scale > 0) s = scale;
  bool gqa = q.size(1) != k.size(1);
  *out = wrap(at::scaled_dot_product_attention(q, k, v, m, dropout_p, causal != 0, s, gqa));
  PT_CATCH
}

pt_err pt_cross_entropy(pt_tensor logits, pt_tensor targets, int64_t ignore_index, int reduction, pt_tensor* out) {
  PT_TRY
  if (reduction < 0 || reduction > 2) throw std::invalid_argument("cross_entropy: reduction must be 0, 1 or 2");
  *out = wrap(at::cross_entropy_loss(T(logits), T(targets), std::nullopt, reduction, ignore_index, 0.0));
  PT_CATCH
}

pt_err pt_dropout(pt_tensor x_, double p, pt_generator g, pt_tensor* out) {
  PT_TRY
  const auto& x = T(x_);
  if (p < 0 || p >= 1) throw std::invalid_argument("dropout: p must be in [0, 1), got " + std::to_string(p));
  if (p == 0) {
    *out = wrap(x);
    return nullptr;
  }
  auto keep = at::empty_like(x).bernoulli_(1.0 - p, gen_of(g));
  *out = wrap(x * keep / (1.0 - p));
  PT_CATCH
}

pt_err pt_multinomial(pt_tensor probs, int64_t n, pt_generator g, pt_tensor* out) {
  PT_TRY
  *out = wrap(at::multinomial(T(probs), n, false, gen_of(g)));
  PT_CATCH
}

// ---- in place -------------------------------------------------------------------------

pt_err pt_copy_(pt_tensor dst, pt_tensor src) {
  PT_TRY
  T(dst).copy_(T(src));
  PT_CATCH
}

pt_err pt_fill_(pt_tensor t, double value) {
  PT_TRY
  T(t).fill_(value);
  PT_CATCH
}

pt_err pt_add_(pt_tensor dst, pt_tensor src, double alpha) {
  PT_TRY
  T(dst).add_(T(src), alpha);
  PT_CATCH
}

pt_err pt_mul_scalar_(pt_tensor t, double value) {
  PT_TRY
  T(t).mul_(value);
  PT_CATCH
}

// ---- autograd -------------------------------------------------------------------------

pt_err pt_set_requires_grad(pt_tensor t, int on) {
  PT_TRY
  T(t).requires_grad_(on != 0);
  PT_CATCH
}

pt_err pt_backward(pt_tensor t, pt_tensor grad, int retain_graph) {
  PT_TRY
  at::Tensor g;
  if (grad != nullptr) g = T(grad);
  std::optional<bool> retain;
  if (retain_graph) retain = true;
  T(t).backward(g, retain, false);
  PT_CATCH
}

pt_err pt_grad(pt_tensor t, pt_tensor* out) {
  PT_TRY
  const auto& g = T(t).grad();
  *out = g.defined() ? wrap(g) : nullptr;
  PT_CATCH
}

pt_err pt_zero_grad(const pt_tensor* ts, int n) {
  PT_TRY
  for (int i = 0; i < n; i++) T(ts[i]).mutable_grad().reset();
  PT_CATCH
}

pt_err pt_autograd_grad(pt_tensor loss, const pt_tensor* inputs, int n, pt_tensor* out) {
  PT_TRY
  std::vector<at::Tensor> in;
  in.reserve(n);
  for (int i = 0; i < n; i++) in.push_back(T(inputs[i]));
  auto gs = torch::autograd::grad({T(loss)}, in, /*grad_outputs=*/{}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  for (int i = 0; i < n; i++) out[i] = gs[i].defined() ? wrap(gs[i]) : nullptr;
  PT_CATCH
}

pt_err pt_accumulate_grad(pt_tensor t, pt_tensor g) {
  PT_TRY
  auto& grad = T(t).mutable_grad();
  if (grad.defined()) {
    grad.add_(T(g));
  } else {
    grad = T(g);
  }
  PT_CATCH
}

int pt_set_grad_enabled(int on) {
  bool prev = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(on != 0);
  return prev ? 1 : 0;
}

int pt_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

pt_err pt_set_autocast(int32_t device_type, int on, int32_t dtype, int* prev_on, int32_t* prev_dtype) {
  PT_TRY
  auto dev = device_of(device_type, 0).type();
  *prev_on = at::autocast::is_autocast_enabled(dev) ? 1 : 0;
  *prev_dtype = static_cast<int32_t>(at::autocast::get_autocast_dtype(dev));
  at::autocast::set_autocast_dtype(dev, dtype_of(dtype));
  at::autocast::set_autocast_enabled(dev, on != 0);
  if (on == 0) at::autocast::clear_cache();
  PT_CATCH
}

// ---- optimisation -----------------------------------------------------------------------

pt_err pt_adamw_step(const pt_tensor* params, const pt_tensor* exp_avg, const pt_tensor* exp_avg_sq, int n,
                     int64_t step, double lr, double beta1, double beta2, double eps, double weight_decay) {
  PT_TRY
  at::NoGradGuard no_grad;
  // The fused kernel wants one device and dtype per call: group like torch.optim does.
  struct Group {
    std::vector<at::Tensor> p, g, m, v;
  };
  std::map<std::pair<int, int>, Group> groups;
  for (int i = 0; i < n; i++) {
    const auto& p = T(params[i]);
    const auto& g = p.grad();
    if (!g.defined()) continue;
    const auto& m = T(exp_avg[i]);
    const auto& v = T(exp_avg_sq[i]);
    if (!m.sizes().equals(p.sizes()) || !v.sizes().equals(p.sizes())) {
      throw std::invalid_argument("adamw: moment shapes do not match parameter " + std::to_string(i) + " " +
                                  c10::str(p.sizes()));
    }
    auto key = std::make_pair(static_cast<int>(p.device().type()) * 1000 + p.device().index(),
                              static_cast<int>(p.scalar_type()));
    auto& grp = groups[key];
    grp.p.push_back(p);
    grp.g.push_back(g);
    grp.m.push_back(m);
    grp.v.push_back(v);
  }
  for (auto& [key, grp] : groups) {
    auto steps_t = at::full({}, static_cast<double>(step), grp.p[0].options().dtype(at::kFloat));
    std::vector<at::Tensor> steps(grp.p.size(), steps_t);
    at::_fused_adamw_(grp.p, grp.g, grp.m, grp.v, {}, steps, lr, beta1, beta2, weight_decay, eps, false, false);
  }
  PT_CATCH
}

pt_err pt_clip_grad_norm(const pt_tensor* params, int n, double max_norm, double* total) {
  PT_TRY
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  for (int i = 0; i < n; i++) {
    const auto& g = T(params[i]).grad();
    if (g.defined()) grads.push_back(g);
  }
  if (grads.empty()) {
    *total = 0;
    return nullptr;
  }
  auto norms = at::_foreach_norm(grads, 2);
  std::vector<at::Tensor> as_float;
  as_float.reserve(norms.size());
  for (auto& t : norms) as_float.push_back(t.to(grads[0].device(), at::kFloat));
  auto norm = at::linalg_vector_norm(at::stack(as_float), 2);
  *total = norm.item().toDouble();
  if (max_norm > 0) {
    auto coef = at::clamp_max(max_norm / (norm + 1e-6), 1.0);
    at::_foreach_mul_(grads, coef);
  }
  PT_CATCH
}

}  // extern "C"
