// One persistent pool of worker threads. Work is handed out as index ranges. Between jobs a
// worker spins briefly (a decode step issues hundreds of small jobs back to back, and a
// futex wake-up costs tens of microseconds in a VM), then sleeps on a condition variable, so
// an idle or shared machine is not kept busy.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsv3 {

class ThreadPool {
 public:
  //! n_threads includes the calling thread; 0 means the number of hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }

  //! Runs fn(thread_index, begin, end) over [0, n) split into size() contiguous chunks and
  //! returns when all are done. Not reentrant: fn must not call parallel_for. Exceptions
  //! thrown by fn are rethrown here (the first one).
  void parallel_for(int64_t n, const std::function<void(int, int64_t, int64_t)>& fn);

  //! The process-wide pool (created on first use with set_default_threads' count).
  static ThreadPool& global();
  //! Sets the thread count of the global pool; takes effect if called before first use.
  static void set_default_threads(int n);

 private:
  void worker_loop(int index);
  void run_chunk(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  std::atomic<uint64_t> generation_{0};  // bumped (under mu_) for each job
  std::atomic<int> pending_{0};          // workers still running the current job
  std::atomic<bool> stop_{false};
  int64_t n_ = 0;
  const std::function<void(int, int64_t, int64_t)>* fn_ = nullptr;
  std::exception_ptr error_;
};

}  // namespace dsv3
