// `--draft auto|N`: speculative decoding with the checkpoint's MTP module, shared by generate,
// chat and serve. auto (the default) drafts one token per step where the model has an MTP
// module and measuring shows it pays; 0 turns it off (and the MTP weights are not loaded);
// N >= 1 always drafts N tokens per step.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "base/error.h"
#include "model/model.h"
#include "runtime/engine.h"

namespace dsv3::app {

struct DraftFlag {
  std::string value = "auto";

  bool is_auto() const { return value == "auto"; }
  //! Whether the MTP module must be loaded.
  bool wants_mtp() const { return is_auto() || count() > 0; }
  int64_t count() const {
    if (is_auto()) return 1;
    try {
      size_t used = 0;
      const long long n = std::stoll(value, &used);
      if (used == value.size() && n >= 0 && n <= 16) return n;
    } catch (const std::exception&) {
    }
    fail("--draft must be auto or a number from 0 to 16, got '", value, "'");
  }
  //! Sets the engine's drafting for `model`: auto without an MTP module drafts nothing.
  void apply(const model::Model& model, runtime::EngineOptions& eo) const {
    eo.draft = is_auto() && !model.has_mtp() ? 0 : count();
    eo.draft_auto = is_auto();
  }
};

inline void add_draft_flag(CLI::App* cmd, DraftFlag& f) {
  cmd->add_option("--draft", f.value,
                  "speculative decoding with the model's MTP module: auto (draft 1 token per step when the "
                  "checkpoint has an MTP module and measured acceptance and step costs say it pays), 0 (off; the "
                  "MTP weights are not loaded) or N (always draft N tokens, chaining the module). Output is the "
                  "main model's either way: the same tokens, for the same seed")
      ->capture_default_str();
}

}  // namespace dsv3::app
