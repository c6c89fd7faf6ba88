// cpualloc.cpp — the CPU allocator Pioneer installs in libtorch: memory of large blocks
// is kept for reuse instead of going back to the system.
//
// Why. libtorch's default CPU allocator hands every block to malloc and free. glibc serves
// blocks over its mmap threshold (128 KiB, rising with use to at most 32 MiB) with fresh
// mappings and unmaps them on free, and trims the top of its heap as blocks below it are
// freed. A training step allocates the same large activations and gradients every time,
// so every step pays again for the kernel to map and zero their pages: a SmolLM2-135M-
// shaped LoRA step on 2 cores took 80,000 page faults (the logits alone are 50 MB and
// several tensors of that size live and die each step), and the process spent a tenth of
// its CPU time in the kernel. Keeping freed blocks and handing them out again for requests
// of the same size class removes nearly all of that.
//
// How. Blocks of at least kReuseMin bytes are rounded up to a size class (eight classes
// per power of two, so at most 12.5 % is asked for and not used; pages never written are
// never touched) and, when freed, kept on a free list of their class, while the total
// kept stays under a limit. Smaller blocks go to malloc and free as before. Every block
// carries a header with its class, so freeing needs no lookup. A failed allocation
// releases everything kept and tries once more.
//
// Huge pages. Blocks of at least kHugePage bytes (most of a model's weights, the larger
// activations) start on a 2 MiB boundary and are marked MADV_HUGEPAGE, so that where
// transparent huge pages are "madvise" (the default of most distributions) the kernel
// backs them with 2 MiB pages. Decoding a token reads every weight once, which on 4 KiB
// pages is a TLB miss every 4 KiB (135,000 a token for a 135M-parameter float32 model);
// on a 2-core machine of ours two threads summing 540 MB read 31.5 GB/s on 4 KiB pages
// and 34.3 GB/s on 2 MiB ones (best of 15 passes; a second machine: 21 against 23). End to
// end the gain is within the noise of bench/generate. Where huge pages are off the advice
// is ignored; the alignment costs address space, not memory.

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>
#include <sys/mman.h>
#include <unordered_map>
#include <vector>

#include "shim.h"

namespace {

constexpr size_t kAlign = 64;          // what libtorch's own CPU allocator guarantees
constexpr size_t kHeader = kAlign;     // the block's class, kept in front of its data
constexpr size_t kReuseMin = 256 << 10;  // smaller blocks: malloc's own free lists do well
constexpr size_t kHugePage = 2 << 20;    // blocks this large start on a huge page and ask for them

// size_class rounds n (at least kReuseMin) up to one of eight steps per power of two.
size_t size_class(size_t n) {
  size_t top = size_t(1) << (63 - __builtin_clzll(static_cast<unsigned long long>(n)));
  size_t step = top / 8;
  return (n + step - 1) / step * step;
}

class ReuseAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return c10::DataPtr(nullptr, c10::Device(c10::DeviceType::CPU));
    size_t size = n >= kReuseMin ? size_class(n) : n;
    void* data = take(size);
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  void copy_data(void* dest, const void* src, size_t count) const override { default_copy_data(dest, src, count); }

  void set_limit(size_t limit) {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      limit_ = limit;
      trim_locked(&drop);
    }
    for (void* b : drop) std::free(b);
  }

  void stats(int64_t* kept, int64_t* reused, int64_t* fresh) {
    std::lock_guard<std::mutex> g(mu_);
    *kept = static_cast<int64_t>(kept_);
    *reused = reused_;
    *fresh = fresh_;
  }

  static ReuseAllocator& get() {
    static ReuseAllocator* a = new ReuseAllocator();  // never destroyed: blocks may outlive exit handlers
    return *a;
  }

 private:
  // take returns the data of a block of the given size class.
  void* take(size_t size) {
    if (size >= kReuseMin) {
      std::lock_guard<std::mutex> g(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* base = it->second.back();
        it->second.pop_back();
        kept_ -= size;
        reused_++;
        return static_cast<char*>(base) + kHeader;
      }
      fresh_++;
    }
    const size_t align = size >= kHugePage ? kHugePage : kAlign;
    void* base = nullptr;
    if (posix_memalign(&base, align, kHeader + size) != 0) {
      release_all();
      if (posix_memalign(&base, align, kHeader + size) != 0) throw std::bad_alloc();
    }
#ifdef MADV_HUGEPAGE
    // Advice only: an error (huge pages not built into the kernel) changes nothing.
    if (align == kHugePage) madvise(base, kHeader + size, MADV_HUGEPAGE);
#endif
    *static_cast<size_t*>(base) = size;
    return static_cast<char*>(base) + kHeader;
  }

  static void release(void* data) {
    if (data == nullptr) return;
    void* base = static_cast<char*>(data) - kHeader;
    size_t size = *static_cast<size_t*>(base);
    if (size < kReuseMin || !get().keep(base, size)) std::free(base);
  }

  // keep puts a freed block on its free list, unless that would pass the limit.
  bool keep(void* base, size_t size) {
    std::lock_guard<std::mutex> g(mu_);
    if (kept_ + size > limit_) return false;
    free_[size].push_back(base);
    kept_ += size;
    return true;
  }

  void release_all() {
    std::vector<void*> drop;
    {
      std::lock_guard<std::mutex> g(mu_);
      size_t limit = limit_;
      limit_ = 0;
      trim_locked(&drop);
      limit_ = limit;
    }
    for (void* b : drop) std::free(b);
  }

  // trim_locked moves kept blocks to drop, largest classes first, until kept_ <= limit_.
  void trim_locked(std::vector<void*>* drop) {
    while (kept_ > limit_) {
      auto big = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (!it->second.empty() && (big == free_.end() || it->first > big->first)) big = it;
      }
      if (big == free_.end()) break;
      drop->push_back(big->second.back());
      big->second.pop_back();
      kept_ -= big->first;
    }
  }

  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t kept_ = 0;
  size_t limit_ = 0;
  int64_t reused_ = 0, fresh_ = 0;
};

}  // namespace

extern "C" {

void pt_cpu_reuse(int64_t limit_bytes) {
  static std::once_flag installed;
  auto& a = ReuseAllocator::get();
  a.set_limit(limit_bytes > 0 ? static_cast<size_t>(limit_bytes) : 0);
  std::call_once(installed, [&] { c10::SetCPUAllocator(&a, /*priority=*/1); });
}

void pt_cpu_reuse_stats(int64_t* kept, int64_t* reused, int64_t* fresh) {
  ReuseAllocator::get().stats(kept, reused, fresh);
}

}  // extern "C"
