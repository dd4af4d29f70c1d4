#include "eval/tasks.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::eval {
namespace {

using json = nlohmann::json;

// Calls f(line_number, object) for every non-empty line of a JSONL file.
template <typename F>
void for_each_object(const std::string& path, F f) {
  std::ifstream in(path);
  if (!in) fail("cannot read task file ", path);
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail(path, ":", n, ": not a JSON object");
    try {
      f(n, j);
    } catch (const json::exception& e) {
      fail(path, ":", n, ": ", e.what());
    }
  }
}

}  // namespace

std::vector<ChoiceItem> load_choice_items(const std::string& path) {
  std::vector<ChoiceItem> out;
  for_each_object(path, [&](int64_t n, const json& j) {
    ChoiceItem it;
    it.context = j.at("context").get<std::string>();
    it.choices = j.at("choices").get<std::vector<std::string>>();
    it.answer = j.at("answer").get<int64_t>();
    if (it.choices.size() < 2) fail(path, ":", n, ": a question needs at least two choices");
    if (it.answer < 0 || it.answer >= int64_t(it.choices.size()))
      fail(path, ":", n, ": answer ", it.answer, " is not the index of one of its ", it.choices.size(), " choices");
    out.push_back(std::move(it));
  });
  if (out.empty()) fail(path, " holds no questions");
  return out;
}

std::vector<GenItem> load_gen_items(const std::string& path) {
  std::vector<GenItem> out;
  for_each_object(path, [&](int64_t n, const json& j) {
    GenItem it;
    it.prompt = j.at("prompt").get<std::string>();
    if (j.contains("target")) it.targets.push_back(j["target"].get<std::string>());
    if (j.contains("targets"))
      for (const auto& t : j["targets"]) it.targets.push_back(t.get<std::string>());
    if (j.contains("regex")) it.regex = j["regex"].get<std::string>();
    if (it.targets.empty() && it.regex.empty()) fail(path, ":", n, ": needs \"target\", \"targets\" or \"regex\"");
    it.stop = j.contains("stop") ? j["stop"].get<std::vector<std::string>>() : std::vector<std::string>{"\n"};
    out.push_back(std::move(it));
  });
  if (out.empty()) fail(path, " holds no prompts");
  return out;
}

}  // namespace dsv3::eval
