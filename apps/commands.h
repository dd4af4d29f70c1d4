// Each `dsv3` subcommand registers itself on the CLI11 app; main() only dispatches.
#pragma once

#include <CLI/CLI.hpp>

namespace dsv3::app {

void add_make_test_model(CLI::App& app);
void add_logits(CLI::App& app);
void add_inspect(CLI::App& app);
void add_bench(CLI::App& app);
void add_generate(CLI::App& app);
void add_chat(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_detokenize(CLI::App& app);
void add_render_chat(CLI::App& app);
void add_train(CLI::App& app);

}  // namespace dsv3::app
