// A persistent pool of worker threads. Work is handed out as index ranges. Between jobs a
// worker spins briefly (a decode step issues hundreds of small jobs back to back, and a
// futex wake-up costs tens of microseconds in a VM), then sleeps on a condition variable, so
// an idle or shared machine is not kept busy.
//
// Who may call it: there is no process-wide pool. A program creates its pools (the dsv3
// command creates one, sized by --threads, in apps/main.cc) and hands one down to whatever
// runs the model: a kernels::Context, the serving engine, the trainer. parallel_for is
// called by ONE thread at a time, the pool's current owner: the serving engine's thread
// while it runs (HTTP threads never touch the pool), the main thread for generate, chat,
// bench and train. It is not reentrant: a job must not call parallel_for on its own pool.
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

  //! While set, parallel_for adds to *seconds the time the calling thread waits for the
  //! other threads after finishing its own share (a profile's "pool wait"); nullptr: off.
  void set_wait_timer(double* seconds) { wait_seconds_ = seconds; }

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
  double* wait_seconds_ = nullptr;
};

}  // namespace dsv3
