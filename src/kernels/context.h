// What a kernel call may use besides its operands: the thread pool that splits its work and
// scratch memory, owned by whoever runs the model (a generation session, the serving engine,
// the trainer, a benchmark, a test) and handed down, so no kernel keeps hidden state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/numerics.h"
#include "threading/pool.h"

namespace dsv3::kernels {

//! Not thread-safe: one caller thread uses a Context (and its pool) at a time. Inside one of
//! its pool's jobs, thread i may use scratch(i, ...) and nothing else of the Context.
class Context {
 public:
  explicit Context(ThreadPool& pool) : pool_(&pool), scratch_(size_t(pool.size())) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  ThreadPool& pool() const { return *pool_; }
  //! How matmul() computes (numerics.h); fp32 unless the owner chooses otherwise.
  Numerics numerics() const { return numerics_; }
  void set_numerics(Numerics n) { numerics_ = n; }
  int threads() const { return pool_->size(); }

  //! At least n floats for pool thread `thread` (0 is the calling thread), kept and reused
  //! by later calls; contents are unspecified.
  float* scratch(int thread, size_t n) {
    std::vector<float>& b = scratch_[size_t(thread)];
    if (b.size() < n) b.resize(n);
    return b.data();
  }

  //! Contexts for running whole kernel calls inside one of this pool's jobs, one per pool
  //! thread: each has its own one-thread pool (the call runs on the thread that makes it)
  //! and buffers, and this context's numerics. For many small independent products (a
  //! layer's routed experts), one per core beats splitting each across the cores. Call
  //! prepare_serial() on the calling thread before the job; thread i then uses serial(i).
  void prepare_serial();
  Context& serial(int thread);

  //! The buffer the GEMM packs its B operand into (call from the calling thread only,
  //! before the pool job that fills it).
  float* pack_b(size_t n) { return grow(pack_b_, n); }
  //! The BF16 GEMM's packed operands (BF16 pairs in 32-bit words): operand 0 is A, 1 is B.
  uint32_t* pack_words(int operand, size_t n) {
    std::vector<uint32_t>& b = pack_words_[operand];
    if (b.size() < n) b.resize(n);
    return b.data();
  }
  //! Buffers a caller prepares GEMM operands in (training's FP8 codes and scales), slot <
  //! kOperandSlots, kept between calls like the packing buffers (calling thread only).
  static constexpr int kOperandSlots = 6;
  float* operand(int slot, size_t n) { return grow(operands_[slot], n); }

 private:
  static float* grow(std::vector<float>& b, size_t n) {
    if (b.size() < n) b.resize(n);
    return b.data();
  }
  struct Serial;
  ThreadPool* pool_;
  Numerics numerics_ = Numerics::Fp32;
  std::vector<std::unique_ptr<Serial>> serial_;
  std::vector<std::vector<float>> scratch_;  // one per pool thread
  std::vector<float> pack_b_;
  std::vector<uint32_t> pack_words_[2];
  std::vector<float> operands_[kOperandSlots];
};

struct Context::Serial {
  ThreadPool pool{1};
  Context ctx{pool};
};

inline void Context::prepare_serial() {
  while (serial_.size() < scratch_.size()) serial_.push_back(std::make_unique<Serial>());
  for (auto& s : serial_) s->ctx.set_numerics(numerics_);
}

inline Context& Context::serial(int thread) { return serial_[size_t(thread)]->ctx; }

}  // namespace dsv3::kernels
