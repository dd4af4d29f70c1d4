// Errors: every failure a user can cause (bad file, bad flag, bad config) is reported as a
// dsv3::Error whose message names the file / tensor / key involved. Internal invariants use
// DSV3_CHECK, which also throws, so a bug surfaces as a message rather than a crash.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace dsv3 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

//! Throws dsv3::Error with the streamed arguments as the message.
template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

}  // namespace dsv3

#define DSV3_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    if (!(cond)) ::dsv3::fail("internal check failed: " #cond " (" __FILE__ ":",       \
                              __LINE__, ") " __VA_OPT__(, ) __VA_ARGS__);              \
  } while (0)
