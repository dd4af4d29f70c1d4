// What the subcommands share: the --threads count and the one thread pool of the process,
// created when a subcommand first asks for it (after the command line is parsed) and
// handed down to whatever runs the model.
#pragma once

#include <memory>

#include "threading/pool.h"

namespace dsv3::app {

class AppContext {
 public:
  int threads = 0;  // --threads; 0: every hardware thread

  //! The pool, created on the first call with `threads_override` threads when it is > 0
  //! (a run config's own count), else with `threads`.
  ThreadPool& pool(int threads_override = 0) {
    if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_override > 0 ? threads_override : threads);
    return *pool_;
  }

 private:
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace dsv3::app
