// Stop strings over streamed text: text that might be the start of a stop string is held
// back until it is known not to be, so a stop string split across tokens is still caught
// and never shown.
#pragma once

#include <string>
#include <vector>

namespace dsv3 {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  //! Adds decoded text; returns what can be shown now. After a stop string is found,
  //! stopped() is true and the returned text ends just before it.
  std::string push(const std::string& text);
  //! The held-back tail at the end of generation (empty once stopped).
  std::string flush();
  bool stopped() const { return stopped_; }
  //! The stop string that matched ("" if none).
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace dsv3
