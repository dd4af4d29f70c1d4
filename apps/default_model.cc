#include "apps/default_model.h"

#include <cstdlib>
#include <filesystem>

#include "base/error.h"

#ifndef DSV3_DEFAULT_MODEL_DIR
#error "CMakeLists.txt defines DSV3_DEFAULT_MODEL_DIR (the source tree's default-model folder)"
#endif

namespace dsv3::app {

std::string shipped_model_dir() { return DSV3_DEFAULT_MODEL_DIR; }

std::string resolve_model_dir(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("DSV3_MODEL");
  const bool from_env = env != nullptr && env[0] != '\0';
  const std::string dir = from_env ? std::string(env) : shipped_model_dir();
  // A missing default is a setup problem, not a bad --model: say where it was looked for.
  if (!std::filesystem::exists(std::filesystem::path(dir) / "config.json")) {
    if (from_env) fail("no --model given and DSV3_MODEL=", dir, " holds no config.json");
    fail("no --model given and the default model ", dir,
         " holds no config.json (pass --model DIR, set DSV3_MODEL, or run scripts/train_default_model.sh)");
  }
  return dir;
}

CLI::Option* add_model_option(CLI::App* cmd, const std::string& names, std::string& model, const std::string& what) {
  return cmd->add_option(names, model,
                         what + "; default: $DSV3_MODEL if set, else the shipped King James Bible model " +
                             shipped_model_dir());
}

}  // namespace dsv3::app
