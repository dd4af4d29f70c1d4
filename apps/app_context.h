// What the subcommands share: the --threads count and the one thread pool of the process,
// created when a subcommand first asks for it (after the command line is parsed) and
// handed down to whatever runs the model.
#pragma once

#include <algorithm>
#include <memory>
#include <thread>

#include "dist/expert_parallel.h"
#include "dist/world.h"
#include "threading/pool.h"

namespace dsv3::app {

class AppContext {
 public:
  int threads = 0;  // --threads; 0: every hardware thread (shared among mpirun's ranks on one machine)
  dist::EpOptions ep;  // expert parallelism under mpirun (--expert-map, ...)

  //! The pool, created on the first call with `threads_override` threads when it is > 0
  //! (a run config's own count), else with `threads`.
  ThreadPool& pool(int threads_override = 0) {
    if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_override > 0 ? threads_override : default_threads());
    return *pool_;
  }

  //! The expert-parallel settings, with the followers' thread count.
  const dist::EpOptions& ep_options() {
    ep.threads = threads;
    return ep;
  }

 private:
  // Ranks of one job on one machine share its cores.
  int default_threads() const {
    if (threads > 0 || dist::World::size() <= 1) return threads;
    return std::max(1, int(std::thread::hardware_concurrency()) / dist::World::local_size());
  }

 public:

 private:
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace dsv3::app
