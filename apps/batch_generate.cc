#include "apps/batch_generate.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include <sys/wait.h>
#include <unistd.h>

#include "api/errors.h"
#include "api/prompt.h"
#include "api/requests.h"
#include "base/error.h"
#include "base/progress.h"

namespace dsv3::app {
namespace {

using json = nlohmann::ordered_json;

struct Item {
  json messages;                     // the prompt as a conversation
  json tools;                        // null: none
  std::vector<std::string> targets;  // exact
  std::string regex;                 // regex
  std::vector<int32_t> prompt;       // rendered as serving and training render it
};

// The prompt as `dsv3 serve` renders it and `dsv3 train` (data.format chat) trains on it:
// validated, tools injected or rendered, content parts joined.
std::vector<int32_t> render(const api::ChatPromptBuilder& chat, const Tokenizer& tok, const Item& it,
                            const std::string& where) {
  try {
    json body{{"messages", it.messages}};
    if (!it.tools.is_null()) body["tools"] = it.tools;
    return tok.encode(chat.build(api::parse_chat_request_json(body)).text, false, false);
  } catch (const api::ApiError& e) {
    fail(where, ": ", e.param.empty() ? "" : e.param + ": ", e.message);
  }
}

std::vector<Item> read_items(const std::string& path, const std::string& check, const api::ChatPromptBuilder& chat,
                             const Tokenizer& tok) {
  std::ifstream in(path);
  if (!in) fail("cannot open the prompts file '", path, "'");
  std::vector<Item> items;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    const json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail(where, ": expected a JSON object per line");
    Item it;
    if (j.contains("messages") && j["messages"].is_array() && !j["messages"].empty()) {
      it.messages = j["messages"];
    } else if (j.contains("prompt") && j["prompt"].is_string()) {
      it.messages = json::array({{{"role", "user"}, {"content", j["prompt"]}}});
    } else {
      fail(where, ": needs \"messages\" (a non-empty array) or \"prompt\" (a string)");
    }
    for (const char* key : {"targets", "target"}) {
      if (!j.contains(key)) continue;
      const json& t = j[key];
      if (t.is_string()) it.targets.push_back(t);
      else if (t.is_array())
        for (const json& s : t) {
          if (!s.is_string()) fail(where, ": \"", key, "\" must hold strings");
          it.targets.push_back(s);
        }
      else fail(where, ": \"", key, "\" must be a string or a list of strings");
    }
    if (j.contains("regex")) {
      if (!j["regex"].is_string()) fail(where, ": \"regex\" must be a string");
      it.regex = j["regex"];
    }
    if (j.contains("tools")) it.tools = j["tools"];
    it.prompt = render(chat, tok, it, where);
    if (check == "exact" && it.targets.empty()) fail(where, ": --check exact needs \"targets\" (or \"target\")");
    if (check == "regex" && it.regex.empty()) fail(where, ": --check regex needs \"regex\"");
    items.push_back(std::move(it));
  }
  if (items.empty()) fail("'", path, "' holds no prompts");
  return items;
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? std::string() : s.substr(a, b - a + 1);
}

// A private temporary file (mkstemp: never a path someone else prepared), removed when done.
class TempFile {
 public:
  TempFile() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dsv3-check-XXXXXX").string();
    const int fd = ::mkstemp(pattern.data());
    if (fd < 0) fail("cannot create a temporary file in ", std::filesystem::temp_directory_path().string());
    ::close(fd);
    path_ = pattern;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The script check: the answer's JSON on the command's stdin; exit status 0 accepts, 1-125
// rejects, anything else (command not found, killed) stops the run rather than reject all.
bool script_accepts(const std::string& cmd, const Item& it, const std::string& answer, const TempFile& tmp) {
  {
    std::ofstream f(tmp.path(), std::ios::trunc);
    json j{{"messages", it.messages}, {"answer", answer}, {"targets", it.targets}};
    f << j.dump() << "\n";
  }
  const int status = std::system(("(" + cmd + ") < " + shell_quote(tmp.path()) + " > /dev/null").c_str());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) >= 126)
    fail("--check-script '", cmd, "' did not run to an exit status (", status == -1 ? "could not start" : "exit status " +
         std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)), "): fix the command");
  return WEXITSTATUS(status) == 0;
}

}  // namespace

void run_batch(const TextModel& tm, const BatchOptions& o, ThreadPool& pool) {
  if (o.samples < 1) fail("--samples must be at least 1");
  if (o.check != "none" && o.check != "exact" && o.check != "regex" && o.check != "script")
    fail("--check must be none, exact, regex or script, got '", o.check, "'");
  if ((o.check == "script") != !o.check_script.empty())
    fail("--check script and --check-script CMD go together");
  if (tm.tokenizer->chat_template().empty()) fail("--batch needs a model with a chat template");
  const api::ChatPromptBuilder chat(tm.tokenizer->chat_template(), tm.tokenizer->bos_token(), tm.tokenizer->eos_token());
  const std::vector<Item> items = read_items(o.in, o.check, chat, *tm.tokenizer);
  std::vector<std::regex> patterns(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    if (o.check == "regex") {
      try {
        patterns[i] = std::regex(items[i].regex, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        fail(o.in, ": prompt ", i + 1, ": invalid regex '", items[i].regex, "': ", e.what());
      }
    }
  std::ofstream out(o.out);
  if (!out) fail("cannot write '", o.out, "'");

  runtime::Engine engine(*tm.model, *tm.tokenizer, pool, o.engine);

  // Every (prompt, sample) is one sequence; the engine batches them and queues the rest. The
  // seed is offset per sample so answers differ but a rerun repeats them.
  struct Job {
    size_t item;
    std::shared_ptr<runtime::Stream> stream;
    std::string text;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < items.size(); ++i)
    if (int64_t(items[i].prompt.size()) >= o.engine.ctx_size)
      fail(o.in, ": prompt ", i + 1, " has ", items[i].prompt.size(), " tokens, not shorter than --ctx-size ", o.engine.ctx_size);
  for (size_t i = 0; i < items.size(); ++i) {
    for (int64_t k = 0; k < o.samples; ++k) {
      runtime::GenRequest g;
      g.prompt = items[i].prompt;
      g.sampling = o.gen.sampling;
      if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + uint64_t(i) * uint64_t(o.samples) + uint64_t(k);
      g.max_tokens = o.gen.max_tokens;
      g.stop = o.gen.stop;
      g.ignore_eos = o.gen.ignore_eos;
      jobs.push_back(Job{i, engine.submit(std::move(g)), {}});
    }
  }
  ProgressBar bar(o.progress, int64_t(jobs.size()), "answer");
  const auto t0 = std::chrono::steady_clock::now();
  std::optional<TempFile> tmp;
  if (o.check == "script") tmp.emplace();
  int64_t accepted = 0, tokens = 0, finished = 0, cut = 0;
  std::vector<int64_t> per_item(items.size(), 0);
  for (Job& job : jobs) {  // in submission order: the output file is deterministic
    runtime::TokenEvent ev;
    std::optional<runtime::FinishInfo> done;
    while (!(done = job.stream->finished())) {
      if (job.stream->next(ev, std::chrono::milliseconds(50))) job.text += ev.text;
    }
    if (done->reason == runtime::FinishReason::Error) fail("generation failed: ", done->error);
    job.text += done->tail;
    tokens += done->completion_tokens;
    const Item& it = items[job.item];
    const std::string answer = trim(job.text);
    // An answer cut by --max-tokens is never data: trained on, it would teach stopping there.
    const bool whole = done->reason != runtime::FinishReason::Length;
    cut += !whole;
    auto accepts = [&] {
      if (o.check == "exact")
        return std::any_of(it.targets.begin(), it.targets.end(), [&](const std::string& t) { return trim(t) == answer; });
      if (o.check == "regex") return std::regex_search(answer, patterns[job.item]);
      if (o.check == "script") return script_accepts(o.check_script, it, answer, *tmp);
      return true;
    };
    if (whole && !answer.empty() && accepts()) {
      json conv = it.messages;
      conv.push_back(json{{"role", "assistant"}, {"content", answer}});
      json line{{"messages", std::move(conv)}};
      if (!it.tools.is_null()) line["tools"] = it.tools;
      out << line.dump() << "\n";
      ++accepted;
      ++per_item[job.item];
    }
    char figures[64];
    std::snprintf(figures, sizeof figures, "accepted %lld", (long long)accepted);
    bar.update(++finished, figures);
  }
  bar.finish();
  out.flush();
  if (!out) fail("cannot write '", o.out, "'");
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int64_t covered = 0;
  for (int64_t c : per_item) covered += c > 0;
  std::fprintf(stderr,
               "generate --batch: %zu prompts x %lld samples = %zu answers (%lld tokens, %.1f tok/s), %lld cut by "
               "--max-tokens; check %s accepted %lld (%.1f%%), %lld of %zu prompts have at least one; wrote %s\n",
               items.size(), (long long)o.samples, jobs.size(), (long long)tokens, secs > 0 ? double(tokens) / secs : 0.0,
               (long long)cut, o.check.c_str(), (long long)accepted, 100.0 * double(accepted) / double(jobs.size()), (long long)covered,
               items.size(), o.out.c_str());
}

}  // namespace dsv3::app
