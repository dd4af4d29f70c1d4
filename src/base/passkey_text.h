// The sentences of the passkey ("needle in a haystack") task of the long-context papers
// (Landmark Attention, YaRN; DeepSeek-V3's report evaluates the same way): shared by the
// evaluation's prompts (eval/passkey.cc, filler "The grass is green. ...") and the trainer's
// context-extension examples (train/passkey_data.cc, filler from the training text), so the
// two ask in the same words.
#pragma once

#include <string>

namespace dsv3::passkey_text {

inline constexpr const char* kIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you "
    "about the important information there.";
inline constexpr const char* kQuestion = " What is the pass key? The pass key is";

inline std::string needle(const std::string& key) {
  return " The pass key is " + key + ". Remember it. " + key + " is the pass key.";
}

}  // namespace dsv3::passkey_text
