#include "apps/textgen.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "base/error.h"

namespace dsv3::app {
namespace {

// Touches every weight page, with a progress bar on a terminal.
void prefault(const io::Checkpoint& ck, const std::function<bool(const std::string&)>& skip) {
  const bool tty = isatty(STDERR_FILENO);
  int last = -1;
  ck.prefault([&](uint64_t done, uint64_t total) {
    const int pct = total ? int(100 * done / total) : 100;
    if (!tty || pct == last) return;
    last = pct;
    std::fprintf(stderr, "\rloading  [%-30.*s] %3d%%  %.2f / %.2f GB", pct * 30 / 100, "##############################",
                 pct, double(done) / 1e9, double(total) / 1e9);
  }, skip);
  if (tty) std::fprintf(stderr, "\r%78s\r", "");
}

}  // namespace

TextModel load_text_model(const std::string& dir, bool need_template, const dist::EpOptions& ep, const WeightFlags& weights,
                          bool load_mtp) {
  namespace fs = std::filesystem;
  TextModel tm;
  model::LoadOptions lo;
  lo.load_mtp = load_mtp;
  lo.memory = weights.memory();
  tm.model = std::make_unique<model::Model>(dist::load_model(dir, lo, ep, weights.recache));
  if (!fs::exists(fs::path(dir) / "tokenizer.json"))
    fail(dir, " has no tokenizer.json (a generated model gets one with `dsv3 make-test-model --tokenizer PATH`)");
  tm.tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(dir));
  if (!tm.tokenizer->chat_template().empty())
    tm.chat_template = ChatTemplate::parse(tm.tokenizer->chat_template(), dir + "/tokenizer_config.json:chat_template");
  else if (need_template)
    fail(dir, "/tokenizer_config.json has no chat_template; use generate without --chat");
  settle_weights(tm.model->weights(), weights, true);
  return tm;
}

void add_weight_flags(CLI::App* cmd, WeightFlags& flags) {
  CLI::Option* h = cmd->add_flag(
      "--hugepages", flags.hugepages,
      "read the weights into 2 MB huge pages instead of mapping the files: loading reads every tensor this process uses "
      "(the whole checkpoint, or a rank's share under mpirun) and needs that much free memory besides the page cache");
  cmd->add_flag("--recache", flags.recache,
                "mapped weights: drop the checkpoint's pages from the page cache and read them again, so the kernel "
                "holds and maps them in 2 MB pages (close to --hugepages decode speed, without the copy); later runs find them so")
      ->excludes(h);
}

double settle_weights(const model::ModelWeights& w, const WeightFlags& flags, bool progress) {
  const io::Checkpoint& ck = *w.checkpoint;
  const bool tty = progress && isatty(STDERR_FILENO);
  const auto skip = [&w](const std::string& name) { return w.idle.count(name) > 0; };
  auto touch = [&] { tty ? prefault(ck, skip) : ck.prefault(nullptr, skip); };
  touch();
  if (flags.hugepages) return 1.0;
  double huge = ck.huge_mapped_fraction(skip);
  if (flags.recache && huge < 0.99) {
    ck.drop_cached_pages();
    touch();
    huge = ck.huge_mapped_fraction(skip);
  }
  // Mapped in small pages, decode takes a TLB miss every 4 KB (measured: 0.92x the speed
  // on a 4.5 GB checkpoint); below a gigabyte the TLB covers much of it anyway.
  if (progress && huge < 0.9 && ck.total_bytes() >= (uint64_t(1) << 30))
    std::fprintf(stderr, "dsv3: note: %.0f%% of the weights are mapped in 2 MB pages; --recache (or --hugepages) "
                         "makes decode up to ~8%% faster\n", 100 * huge);
  return huge;
}

void add_generation_flags(CLI::App* cmd, runtime::GenerateOptions& o) {
  SamplingParams& s = o.sampling;
  cmd->add_option("--max-tokens,-n", o.max_tokens, "most tokens to generate")->capture_default_str();
  cmd->add_option("--temperature", s.temperature, "0 for greedy")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "keep the k most likely tokens (0: off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "nucleus sampling mass (1: off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "drop tokens below min-p times the best one's probability")->capture_default_str();
  cmd->add_option("--repetition-penalty", s.repetition_penalty, "HF-style penalty over prompt and output")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty, "OpenAI-style, over the output")->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty, "OpenAI-style, over the output")->capture_default_str();
  cmd->add_option_function<uint64_t>("--seed", [&s](uint64_t v) { s.seed = v; }, "random seed (default: clock)");
  cmd->add_option("--stop", o.stop, "stop string (repeatable); not shown");
  cmd->add_flag("--ignore-eos", o.ignore_eos, "keep generating past the end-of-sequence token");
}

std::vector<int32_t> chat_prompt(const TextModel& tm, const nlohmann::json& messages) {
  nlohmann::json ctx = {{"messages", messages},
                        {"add_generation_prompt", true},
                        {"bos_token", tm.tokenizer->bos_token()},
                        {"eos_token", tm.tokenizer->eos_token()}};
  return tm.tokenizer->encode(tm.chat_template->render(ctx), /*add_bos=*/false);
}

std::string stats_line(const runtime::GenerateResult& r) {
  const int64_t computed = r.prompt_tokens - r.reused_tokens;
  const int64_t out = r.completion_tokens;
  char buf[256];
  // The first output token comes with the prefill; the decode rate counts the ones after it.
  std::snprintf(buf, sizeof buf, "prompt %lld tok (%lld cached) %.1f tok/s | output %lld tok %.1f tok/s | %s",
                (long long)r.prompt_tokens, (long long)r.reused_tokens,
                r.prefill_seconds > 0 ? double(computed) / r.prefill_seconds : 0.0, (long long)out,
                r.decode_seconds > 0 && out > 1 ? double(out - 1) / r.decode_seconds : 0.0,
                runtime::finish_reason_name(r.finish_reason));
  std::string line = buf;
  const runtime::DraftStats& d = r.drafts;
  if (d.steps > 0) {
    line += " | drafts accepted";
    for (size_t k = 0; k < d.drafted.size(); ++k) {
      std::snprintf(buf, sizeof buf, " %.0f%%", d.drafted[k] ? 100.0 * double(d.accepted[k]) / double(d.drafted[k]) : 0.0);
      line += buf;
    }
    std::snprintf(buf, sizeof buf, " (pos 1..%zu) over %lld verify steps, %.2f tok/step", d.drafted.size(),
                  (long long)d.steps, double(d.steps + d.accepted_total()) / double(d.steps));
    line += buf;
  }
  return line;
}

}  // namespace dsv3::app
