// The model `generate`, `chat` and `serve` use when --model is omitted: the King James
// Bible model shipped in the source tree (default-model/), or $DSV3_MODEL.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace dsv3::app {

//! The shipped model folder of the source tree this binary was built from.
std::string shipped_model_dir();

//! `flag` when given; else $DSV3_MODEL when set and non-empty; else shipped_model_dir().
//! Throws dsv3::Error when the folder chosen without a flag has no config.json, naming the
//! folder and how to choose another.
std::string resolve_model_dir(const std::string& flag);

//! Registers `names` (e.g. "--model,-m") as an optional model folder whose help states the
//! default; the command must pass the value through resolve_model_dir.
CLI::Option* add_model_option(CLI::App* cmd, const std::string& names, std::string& model, const std::string& what);

}  // namespace dsv3::app
