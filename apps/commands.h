// Each `dsv3` subcommand registers itself on the CLI11 app; main() only dispatches. The ones
// that run a model take the shared AppContext for its thread pool.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "apps/app_context.h"

namespace dsv3::app {

void add_make_test_model(CLI::App& app);
void add_logits(CLI::App& app, AppContext& ctx);
void add_inspect(CLI::App& app);
void add_quantize(CLI::App& app);
void add_bench(CLI::App& app, AppContext& ctx);
void add_generate(CLI::App& app, AppContext& ctx);
void add_chat(CLI::App& app, AppContext& ctx);
void add_tokenize(CLI::App& app);
void add_detokenize(CLI::App& app);
void add_render_chat(CLI::App& app);
void add_serve(CLI::App& app, AppContext& ctx);
void add_train_tokenizer(CLI::App& app, AppContext& ctx);
void add_grad(CLI::App& app, AppContext& ctx);

//! "0,17,345" -> ids; throws dsv3::Error naming the bad item (shared by logits and grad).
std::vector<int32_t> parse_token_list(const std::string& s);
void add_train(CLI::App& app, AppContext& ctx);
void add_plot(CLI::App& app);
void add_eval(CLI::App& app, AppContext& ctx);

}  // namespace dsv3::app
