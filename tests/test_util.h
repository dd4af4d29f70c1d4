// Small helpers shared by the unit tests: a unique temporary folder per test, a way to
// capture the message of an expected dsv3::Error, and the thread pool the tests run models on.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "base/error.h"
#include "threading/pool.h"

namespace dsv3::testutil {

//! The tests' thread pool (every hardware thread). Tests run one at a time in a process, so
//! they take turns owning it; an engine a test creates owns it until the engine is gone.
inline ThreadPool& pool() {
  static ThreadPool p(0);
  return p;
}

//! A float's bit pattern, for bit-for-bit comparisons (-0 and NaN payloads included).
inline uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

//! A fresh folder under testing::TempDir(), unique per process and instance, removed (with
//! everything in it) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "tmp") {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "dsv3_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    if (info) name += std::string("_") + info->name();
    for (char& ch : name)
      if (ch == '/') ch = '_';  // parameterized test names contain slashes
    path_ = std::filesystem::path(::testing::TempDir()) / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  //! A path inside the folder.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int code;         // exit status (-1 if killed)
  std::string out;  // stdout and stderr together
};

//! Runs the shell command `cmd` and returns its exit status and standard output.
inline CommandResult run_shell(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

//! Runs `dsv3 <args>` (the binary under test) with `input` on stdin.
inline CommandResult run_dsv3(const std::string& args, const std::string& input = "") {
  TempDir dir("cmd");
  { std::ofstream(dir / "stdin") << input; }
  return run_shell(std::string(DSV3_BINARY) + " " + args + " < " + (dir / "stdin") + " 2>&1");
}

//! Runs `f`, which must throw dsv3::Error, and returns its message (records a failure and
//! returns "" if nothing or something else was thrown).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected dsv3::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected dsv3::Error, nothing was thrown";
  return "";
}

//! Predicate formatter for EXPECT_CONTAINS: `text` contains `part`.
inline ::testing::AssertionResult contains_text(const char* text_expr, const char* part_expr, const std::string& text,
                                                const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text_expr << " does not contain " << part_expr << "\n  text: " << text
                                       << "\n  part: " << part;
}

}  // namespace dsv3::testutil

#define EXPECT_CONTAINS(text, part) EXPECT_PRED_FORMAT2(::dsv3::testutil::contains_text, text, part)
