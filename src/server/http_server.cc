#include "server/http_server.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <chrono>
#include <ctime>
#include <random>

#include "api/errors.h"
#include "api/prompt.h"
#include "api/reasoning.h"
#include "api/requests.h"
#include "api/tool_calls.h"
#include "base/error.h"
#include "server/choice_output.h"
#include "server/metrics.h"
#include "server/openai_names.h"
#include "sampling/json_schema.h"
#include "sampling/json_token_constraint.h"

namespace dsv3::server {
namespace {

using ojson = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Generated text of random models is often not valid UTF-8: dump with U+FFFD instead of
// throwing (which would turn into a 500).
std::string dump(const ojson& j) { return j.dump(-1, ' ', false, ojson::error_handler_t::replace); }

std::string random_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^ (counter++ * 0x9e3779b97f4a7c15ull));
  static const char* digits = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id += digits[rng() % 62];
  return id;
}

// One server-sent event carrying a JSON chunk; false once the client is gone.
bool sse_send(httplib::DataSink& sink, const ojson& j) {
  const std::string line = "data: " + dump(j) + "\n\n";
  return sink.write(line.data(), line.size());
}

// The OpenAI stream terminator, then the end of the chunked body.
void sse_finish(httplib::DataSink& sink) {
  const std::string done = "data: [DONE]\n\n";
  sink.write(done.data(), done.size());
  sink.done();
}

void send_error(httplib::Response& res, const api::ApiError& e) {
  res.status = e.status;
  res.set_content(dump(e.to_json()), "application/json");
}

api::ApiError status_error(int status) {
  switch (status) {
    case 404: return api::ApiError(404, "Not found", "not_found_error");
    case 405: return api::ApiError(405, "Method not allowed", "invalid_request_error");
    case 413: return api::ApiError(413, "Request body too large", "invalid_request_error", "", "payload_too_large");
    case 401: return api::ApiError(401, "Unauthorized", "authentication_error");
    default: return api::ApiError(status, "HTTP error " + std::to_string(status), "server_error");
  }
}

//! One sequence per choice, and what each has produced so far.
struct Choice {
  std::shared_ptr<runtime::Stream> stream;
  ChoiceOutput out;
  std::optional<runtime::FinishInfo> done;
  ojson logprobs = ojson::array();  // chat: logprobs.content entries
};

}  // namespace

struct HttpServer::Impl {
  const model::Model& model;
  const Tokenizer& tok;
  runtime::Engine& engine;
  ServerOptions opts;
  httplib::Server svr;
  Metrics metrics;
  std::unique_ptr<api::ChatPromptBuilder> chat;
  std::once_flag vocab_once;
  std::shared_ptr<const TokenVocab> vocab;  // token bytes + trie for JSON masking, built on first use
  int64_t created = std::time(nullptr);
  int bound_port = -1;

  Impl(const model::Model& m, const Tokenizer& t, runtime::Engine& e, ServerOptions o) : model(m), tok(t), engine(e), opts(std::move(o)) {
    if (!tok.chat_template().empty())
      chat = std::make_unique<api::ChatPromptBuilder>(tok.chat_template(), tok.bos_token(), tok.eos_token());
    setup_metrics();
    routes();
  }
  ~Impl() { engine.set_step_observer({}); }

  void setup_metrics() {
    engine.set_step_observer([this](int64_t seqs, int64_t tokens, double secs) {
      metrics.histogram("dsv3_batch_size").observe(double(seqs));
      metrics.histogram("dsv3_step_tokens").observe(double(tokens));
      metrics.histogram("dsv3_step_seconds").observe(secs);
    });
    auto s = [this] { return engine.stats(); };
    metrics.gauge("dsv3_queue_length", "Sequences waiting for admission.", [s] { return double(s().queued); });
    metrics.gauge("dsv3_active_sequences", "Sequences being prefilled or decoded.", [s] { return double(s().active); });
    metrics.gauge("dsv3_cache_pages_total", "Pages of the latent cache.", [s] { return double(s().pages_total); });
    metrics.gauge("dsv3_cache_pages_in_use", "Cache pages held by sequences.", [s] { return double(s().pages_in_use); });
    metrics.gauge("dsv3_cache_pages_cached", "Unused cache pages kept for prefix reuse.",
                  [s] { return double(s().pages_cached); });
    metrics.gauge("dsv3_cache_bytes", "Latent cache budget in bytes.", [s] { return double(s().cache_bytes); });
    metrics.gauge("dsv3_cache_usage_ratio", "Fraction of cache pages held by sequences.", [s] {
      const runtime::EngineStats st = s();
      return st.pages_total ? double(st.pages_in_use) / double(st.pages_total) : 0.0;
    });
  }

  // --- plumbing -------------------------------------------------------------------------

  bool authorized(const httplib::Request& req, httplib::Response& res) {
    if (opts.api_key.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    if (h.empty()) {
      send_error(res, api::ApiError(401, "Missing API key: send the header 'Authorization: Bearer KEY'.",
                                    "authentication_error", "", "invalid_api_key"));
      return false;
    }
    if (h != "Bearer " + opts.api_key) {
      send_error(res, api::ApiError(401, "Incorrect API key provided.", "authentication_error", "", "invalid_api_key"));
      return false;
    }
    return true;
  }

  void check_model(const std::string& name) const {
    if (!name.empty() && name != opts.model_name)
      throw api::ApiError(404, "The model '" + name + "' does not exist; this server serves '" + opts.model_name + "'.",
                          "invalid_request_error", "model", "model_not_found");
  }

  ojson model_card() const {
    return ojson{{"id", opts.model_name}, {"object", "model"}, {"created", created}, {"owned_by", "dsv3"},
                 {"max_model_len", engine.options().ctx_size}};
  }

  ojson usage_json(int64_t prompt, int64_t completion, int64_t cached) const {
    return ojson{{"prompt_tokens", prompt},
                 {"completion_tokens", completion},
                 {"total_tokens", prompt + completion},
                 {"prompt_tokens_details", {{"cached_tokens", cached}}}};
  }

  ojson token_logprob(int32_t id, float lp) const {
    const std::string& b = tok.token_bytes(id);
    ojson bytes = ojson::array();
    for (unsigned char ch : b) bytes.push_back(int(ch));
    return ojson{{"token", b}, {"logprob", lp}, {"bytes", bytes}};
  }

  void record(const runtime::FinishInfo& f) {
    metrics.add("dsv3_prompt_tokens_total", uint64_t(f.prompt_tokens));
    metrics.add("dsv3_cached_prompt_tokens_total", uint64_t(f.cached_tokens));
    metrics.add("dsv3_generation_tokens_total", uint64_t(f.completion_tokens));
    metrics.add("dsv3_sequences_finished_total", 1);
    metrics.histogram("dsv3_queue_seconds").observe(f.queue_seconds);
    if (f.completion_tokens > 0) metrics.histogram("dsv3_time_to_first_token_seconds").observe(f.first_token_seconds);
    metrics.histogram("dsv3_request_duration_seconds").observe(f.total_seconds);
  }

  std::vector<std::shared_ptr<runtime::Stream>> submit_all(std::vector<runtime::GenRequest>& reqs) {
    std::vector<std::shared_ptr<runtime::Stream>> out;
    try {
      for (auto& r : reqs) out.push_back(engine.submit(std::move(r)));
    } catch (const Error& e) {
      for (auto& s : out) s->cancel();
      throw api::ApiError(400, e.what(), "invalid_request_error", "max_tokens");
    }
    return out;
  }

  // Runs the choices to the end. `on_event(i, event)` sees each token, `on_finish(i)` each
  // end; `write` returns false once the client is gone, which cancels every choice.
  // Between events, `idle()` is called about every 2 s (non-streaming: a keep-alive byte).
  bool drive(std::vector<Choice>& choices, const std::function<bool(size_t, const runtime::TokenEvent&)>& on_event,
             const std::function<bool(size_t)>& on_finish, const std::function<bool()>& idle) {
    auto cancel_all = [&] {
      for (auto& c : choices) c.stream->cancel();
      return false;
    };
    auto last_io = Clock::now();
    for (;;) {
      bool progressed = false, all_done = true;
      for (size_t i = 0; i < choices.size(); ++i) {
        Choice& c = choices[i];
        if (c.done) continue;
        all_done = false;
        runtime::TokenEvent ev;
        while (c.stream->next(ev, 0ms)) {
          progressed = true;
          if (!on_event(i, ev)) return cancel_all();
        }
        if (auto f = c.stream->finished()) {
          c.done = f;
          record(*f);
          progressed = true;
          if (!on_finish(i)) return cancel_all();
        }
      }
      if (all_done) return true;
      if (progressed) {
        last_io = Clock::now();
        continue;
      }
      // Nothing new: wait on the first unfinished choice (its event is handled next round).
      for (size_t i = 0; i < choices.size(); ++i) {
        if (choices[i].done) continue;
        runtime::TokenEvent ev;
        if (choices[i].stream->next(ev, 20ms)) {
          if (!on_event(i, ev)) return cancel_all();
          last_io = Clock::now();
        }
        break;
      }
      if (Clock::now() - last_io > 2s) {
        if (!idle()) return cancel_all();
        last_io = Clock::now();
      }
    }
  }

  // --- chat completions -----------------------------------------------------------------

  void chat_completions(const httplib::Request& req, httplib::Response& res) {
    if (!chat)
      throw api::ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
    api::RequestLimits limits;
    limits.max_n = opts.max_n;
    limits.vocab_size = int32_t(model.config().vocab_size);
    api::ChatCompletionRequest r = api::parse_chat_request(std::string_view(req.body), limits);
    check_model(r.model);
    const api::ChatPrompt prompt = chat->build(r);
    std::vector<int32_t> ids = tok.encode(prompt.text, false, false);
    const int64_t ctx = engine.options().ctx_size;
    if (int64_t(ids.size()) > engine.max_prompt_tokens())
      throw api::ApiError(400,
                          "This model's maximum context length is " + std::to_string(ctx) + " tokens; the messages are " +
                              std::to_string(ids.size()) + " tokens (one more is needed for the answer).",
                          "invalid_request_error", "messages", "context_length_exceeded");
    const int64_t room = ctx - int64_t(ids.size());
    const int64_t max_tokens = std::min(r.max_tokens.value_or(room), room);
    const std::vector<int32_t> forced =
        prompt.forced_prefix.empty() ? std::vector<int32_t>{} : tok.encode(prompt.forced_prefix, false, false);
    std::vector<runtime::GenRequest> gens;
    for (int k = 0; k < r.n; ++k) {
      runtime::GenRequest g;
      g.prompt = ids;
      g.sampling = r.sampling;
      if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + uint64_t(k);
      g.max_tokens = max_tokens;
      g.stop = r.stop;
      g.ignore_eos = r.ignore_eos;
      g.skip_special = !prompt.tools_offered;  // the tool-call parser reads the markers
      g.top_logprobs = r.logprobs ? r.top_logprobs : -1;
      g.forced = forced;
      g.constraint = make_constraint(r.response_format);
      gens.push_back(std::move(g));
    }
    auto streams = submit_all(gens);
    auto choices = std::make_shared<std::vector<Choice>>();
    for (auto& s : streams) choices->push_back(Choice{s, ChoiceOutput(prompt), std::nullopt});
    const std::string id = random_id("chatcmpl-");
    const int64_t created_at = std::time(nullptr);
    const int64_t n_prompt = int64_t(ids.size());
    const bool logprobs = r.logprobs;
    const int top = r.top_logprobs;

    if (r.stream) {
      const bool usage = r.include_usage;
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider("text/event-stream", [=, this](size_t, httplib::DataSink& sink) {
        auto send = [&](const ojson& j) { return sse_send(sink, j); };
        auto chunk = [&](size_t i, ojson delta, ojson lp, ojson finish) {
          ojson c{{"index", i}, {"delta", std::move(delta)}, {"logprobs", std::move(lp)}, {"finish_reason", finish}};
          return send(ojson{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created_at},
                            {"model", opts.model_name}, {"system_fingerprint", "dsv3"},
                            {"choices", ojson::array({std::move(c)})}});
        };
        for (size_t i = 0; i < choices->size(); ++i)
          if (!chunk(i, ojson{{"role", "assistant"}, {"content", ""}}, nullptr, nullptr)) {
            for (auto& c : *choices) c.stream->cancel();
            return false;
          }
        const bool ok = drive(
            *choices,
            [&](size_t i, const runtime::TokenEvent& ev) {
              Choice& c = (*choices)[i];
              ojson delta = c.out.push(ev.text);
              ojson lp = nullptr;
              if (logprobs) lp = ojson{{"content", ojson::array({logprob_entry(ev, top)})}};
              if (delta.empty() && lp.is_null()) return true;
              return chunk(i, std::move(delta), std::move(lp), nullptr);
            },
            [&](size_t i) {
              Choice& c = (*choices)[i];
              const runtime::FinishInfo& f = *c.done;
              ojson delta = c.out.push(f.tail);
              ojson rest = c.out.finish();
              for (auto& [k, v] : rest.items()) merge_delta(delta, k, v);
              if (!delta.empty() && !chunk(i, std::move(delta), nullptr, nullptr)) return false;
              if (f.reason == runtime::FinishReason::Error) return send(api::ApiError(500, f.error, "server_error").to_json());
              return chunk(i, ojson::object(), nullptr, c.out.finish_reason(f.reason));
            },
            [] { return true; });
        if (!ok) return false;
        if (usage) {
          int64_t completion = 0, cached = 0;
          for (auto& c : *choices) completion += c.done->completion_tokens, cached = c.done->cached_tokens;
          send(ojson{{"id", id}, {"object", "chat.completion.chunk"}, {"created", created_at},
                     {"model", opts.model_name}, {"system_fingerprint", "dsv3"}, {"choices", ojson::array()},
                     {"usage", usage_json(n_prompt, completion, cached)}});
        }
        sse_finish(sink);
        return true;
      });
      return;
    }

    respond_when_done(res, choices, [=, this](std::vector<Choice>& cs) {
      ojson arr = ojson::array();
      int64_t completion = 0, cached = 0;
      for (size_t i = 0; i < cs.size(); ++i) {
        Choice& c = cs[i];
        if (c.done->reason == runtime::FinishReason::Error) throw api::ApiError(500, c.done->error, "server_error");
        completion += c.done->completion_tokens;
        cached = c.done->cached_tokens;
        ojson lp = nullptr;
        if (logprobs) lp = ojson{{"content", c.logprobs}};
        arr.push_back(ojson{{"index", i},
                            {"message", c.out.message()},
                            {"logprobs", lp},
                            {"finish_reason", c.out.finish_reason(c.done->reason)}});
      }
      return ojson{{"id", id},
                   {"object", "chat.completion"},
                   {"created", created_at},
                   {"model", opts.model_name},
                   {"system_fingerprint", "dsv3"},
                   {"choices", arr},
                   {"usage", usage_json(n_prompt, completion, cached)}};
    }, [=, this](Choice& c, const runtime::TokenEvent& ev) {
      c.out.push(ev.text);
      if (logprobs) c.logprobs.push_back(logprob_entry(ev, top));
    });
  }

  static void merge_delta(ojson& delta, const std::string& key, const ojson& v) {
    if (key == "tool_calls" && delta.contains("tool_calls")) {
      for (const auto& t : v) delta["tool_calls"].push_back(t);
    } else if (v.is_string() && delta.contains(key) && delta[key].is_string()) {
      delta[key] = delta[key].get<std::string>() + v.get<std::string>();
    } else {
      delta[key] = v;
    }
  }

  ojson logprob_entry(const runtime::TokenEvent& ev, int top) const {
    ojson e = token_logprob(ev.token, ev.logprob);
    ojson alts = ojson::array();
    for (int k = 0; k < top && k < int(ev.top.size()); ++k) alts.push_back(token_logprob(ev.top[size_t(k)].token, ev.top[size_t(k)].logprob));
    e["top_logprobs"] = alts;
    return e;
  }

  std::unique_ptr<TokenConstraint> make_constraint(const api::ResponseFormat& f);

  // Non-streaming: the body is sent once every choice is done. The response is chunked so
  // that a client that hangs up is noticed (a keep-alive space, valid before JSON, every
  // 2 s) and its sequences cancelled rather than run to the end.
  void respond_when_done(httplib::Response& res, std::shared_ptr<std::vector<Choice>> choices,
                         std::function<ojson(std::vector<Choice>&)> build,
                         std::function<void(Choice&, const runtime::TokenEvent&)> on_event) {
    res.set_chunked_content_provider("application/json", [=, this](size_t, httplib::DataSink& sink) {
      const bool ok = drive(
          *choices,
          [&](size_t i, const runtime::TokenEvent& ev) {
            on_event((*choices)[i], ev);
            return true;
          },
          [&](size_t i) {
            Choice& c = (*choices)[i];
            c.out.push(c.done->tail);
            c.out.finish();
            return true;
          },
          [&] { return sink.write(" ", 1); });
      if (!ok) return false;
      std::string body;
      try {
        body = dump(build(*choices));
      } catch (const api::ApiError& e) {
        body = dump(e.to_json());
      }
      sink.write(body.data(), body.size());
      sink.done();
      return true;
    });
  }

  // --- text completions -----------------------------------------------------------------

  void completions(const httplib::Request& req, httplib::Response& res) {
    api::RequestLimits limits;
    limits.max_n = opts.max_n;
    limits.vocab_size = int32_t(model.config().vocab_size);
    api::CompletionRequest r = api::parse_completion_request(std::string_view(req.body), limits);
    check_model(r.model);
    const int64_t ctx = engine.options().ctx_size;
    std::vector<std::vector<int32_t>> prompts;
    std::vector<std::string> prompt_texts;
    for (size_t p = 0; p < r.prompts.size(); ++p) {
      const api::PromptInput& in = r.prompts[p];
      std::vector<int32_t> ids = in.is_tokens ? in.tokens : tok.encode(in.text, tok.add_bos_by_default(), false);
      if (ids.empty()) throw api::ApiError::invalid("prompt", "the prompt is empty");
      if (int64_t(ids.size()) > engine.max_prompt_tokens())
        throw api::ApiError(400,
                            "This model's maximum context length is " + std::to_string(ctx) + " tokens; the prompt is " +
                                std::to_string(ids.size()) + " tokens (one more is needed for the answer).",
                            "invalid_request_error", "prompt", "context_length_exceeded");
      for (int32_t t : ids)
        if (!tok.is_valid_id(t)) throw api::ApiError::invalid("prompt", "token id " + std::to_string(t) + " is not a token of this tokenizer");
      prompt_texts.push_back(in.is_tokens ? tok.decode(ids) : in.text);
      prompts.push_back(std::move(ids));
    }
    std::vector<runtime::GenRequest> gens;
    int64_t n_prompt = 0;
    for (size_t p = 0; p < prompts.size(); ++p) {
      n_prompt += int64_t(prompts[p].size());
      for (int k = 0; k < r.n; ++k) {
        runtime::GenRequest g;
        g.prompt = prompts[p];
        g.sampling = r.sampling;
        if (g.sampling.seed) g.sampling.seed = *g.sampling.seed + uint64_t(p * size_t(r.n) + size_t(k));
        g.max_tokens = std::min<int64_t>(r.max_tokens, ctx - int64_t(prompts[p].size()));
        g.stop = r.stop;
        g.ignore_eos = r.ignore_eos;
        g.top_logprobs = r.logprobs ? *r.logprobs : -1;
        gens.push_back(std::move(g));
      }
    }
    auto streams = submit_all(gens);
    auto choices = std::make_shared<std::vector<Choice>>();
    api::ChatPrompt plain;  // no tools, no reasoning: text as generated
    for (auto& s : streams) choices->push_back(Choice{s, ChoiceOutput(plain), std::nullopt});
    // Completions logprobs: parallel arrays per choice.
    struct TextLogprobs {
      ojson tokens = ojson::array(), token_logprobs = ojson::array(), top = ojson::array(), offsets = ojson::array();
      int64_t offset = 0;
    };
    auto tlp = std::make_shared<std::vector<TextLogprobs>>(choices->size());
    const std::string id = random_id("cmpl-");
    const int64_t created_at = std::time(nullptr);
    const bool echo = r.echo;
    const std::optional<int> logprobs = r.logprobs;
    const int n = r.n;
    auto echo_text = [=](size_t i) { return echo ? prompt_texts[i / size_t(n)] : std::string(); };
    for (size_t i = 0; i < tlp->size(); ++i) (*tlp)[i].offset = int64_t(echo_text(i).size());
    auto add_lp = [=, this](size_t i, const runtime::TokenEvent& ev) {
      if (!logprobs) return ojson(nullptr);
      TextLogprobs& t = (*tlp)[i];
      ojson one{{"tokens", ojson::array()}, {"token_logprobs", ojson::array()}, {"top_logprobs", ojson::array()},
                {"text_offset", ojson::array()}};
      const std::string& piece = tok.token_bytes(ev.token);
      ojson alts = ojson::object();
      for (int k = 0; k < *logprobs && k < int(ev.top.size()); ++k)
        alts[tok.token_bytes(ev.top[size_t(k)].token)] = ev.top[size_t(k)].logprob;
      one["tokens"].push_back(piece);
      one["token_logprobs"].push_back(ev.logprob);
      one["top_logprobs"].push_back(alts);
      one["text_offset"].push_back(t.offset);
      t.tokens.push_back(piece);
      t.token_logprobs.push_back(ev.logprob);
      t.top.push_back(alts);
      t.offsets.push_back(t.offset);
      t.offset += int64_t(ev.text.size());
      return one;
    };

    if (r.stream) {
      const bool usage = r.include_usage;
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider("text/event-stream", [=, this](size_t, httplib::DataSink& sink) {
        auto send = [&](const ojson& j) { return sse_send(sink, j); };
        auto chunk = [&](size_t i, const std::string& text, ojson lp, ojson finish) {
          ojson c{{"index", i}, {"text", text}, {"logprobs", std::move(lp)}, {"finish_reason", finish}};
          return send(ojson{{"id", id}, {"object", "text_completion"}, {"created", created_at},
                            {"model", opts.model_name}, {"system_fingerprint", "dsv3"},
                            {"choices", ojson::array({std::move(c)})}});
        };
        if (echo)
          for (size_t i = 0; i < choices->size(); ++i)
            if (!chunk(i, echo_text(i), nullptr, nullptr)) {
              for (auto& c : *choices) c.stream->cancel();
              return false;
            }
        const bool ok = drive(
            *choices,
            [&](size_t i, const runtime::TokenEvent& ev) {
              ojson lp = add_lp(i, ev);
              if (ev.text.empty() && lp.is_null()) return true;
              return chunk(i, ev.text, std::move(lp), nullptr);
            },
            [&](size_t i) {
              const runtime::FinishInfo& f = *(*choices)[i].done;
              if (f.reason == runtime::FinishReason::Error) return send(api::ApiError(500, f.error, "server_error").to_json());
              return chunk(i, f.tail, nullptr, openai_finish_reason(f.reason));
            },
            [] { return true; });
        if (!ok) return false;
        if (usage) {
          int64_t completion = 0;
          for (auto& c : *choices) completion += c.done->completion_tokens;
          send(ojson{{"id", id}, {"object", "text_completion"}, {"created", created_at},
                     {"model", opts.model_name}, {"choices", ojson::array()},
                     {"usage", usage_json(n_prompt, completion, (*choices)[0].done->cached_tokens)}});
        }
        sse_finish(sink);
        return true;
      });
      return;
    }

    auto texts = std::make_shared<std::vector<std::string>>(choices->size());
    respond_when_done(res, choices, [=, this](std::vector<Choice>& cs) {
      ojson arr = ojson::array();
      int64_t completion = 0;
      for (size_t i = 0; i < cs.size(); ++i) {
        Choice& c = cs[i];
        if (c.done->reason == runtime::FinishReason::Error) throw api::ApiError(500, c.done->error, "server_error");
        completion += c.done->completion_tokens;
        ojson lp = nullptr;
        if (logprobs) {
          const TextLogprobs& t = (*tlp)[i];
          lp = ojson{{"tokens", t.tokens}, {"token_logprobs", t.token_logprobs}, {"top_logprobs", t.top},
                     {"text_offset", t.offsets}};
        }
        arr.push_back(ojson{{"index", i},
                            {"text", echo_text(i) + (*texts)[i] + c.done->tail},
                            {"logprobs", lp},
                            {"finish_reason", openai_finish_reason(c.done->reason)}});
      }
      return ojson{{"id", id},       {"object", "text_completion"}, {"created", created_at},
                   {"model", opts.model_name}, {"system_fingerprint", "dsv3"}, {"choices", arr},
                   {"usage", usage_json(n_prompt, completion, cs[0].done->cached_tokens)}};
    }, [=](Choice& c, const runtime::TokenEvent& ev) {
      const size_t i = size_t(&c - choices->data());
      (*texts)[i] += ev.text;
      add_lp(i, ev);
    });
  }

  // --- routes ---------------------------------------------------------------------------

  // Runs a handler: API errors become OpenAI error bodies, anything else a 500; the
  // outcome is counted by endpoint and status.
  httplib::Server::Handler wrap(const std::string& endpoint, bool auth,
                                std::function<void(const httplib::Request&, httplib::Response&)> f) {
    return [this, endpoint, auth, f](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!auth || authorized(req, res)) f(req, res);
      } catch (const api::ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, api::ApiError(400, e.what()));
      } catch (const std::exception& e) {
        send_error(res, api::ApiError(500, std::string("internal error: ") + e.what(), "server_error"));
      }
      // A streamed (content-provider) response has no status yet: httplib sends 200.
      metrics.request(endpoint, res.status < 0 ? 200 : res.status);
    };
  }

  void routes() {
    svr.set_payload_max_length(opts.max_body_bytes);
    const int threads = opts.http_threads > 0 ? opts.http_threads : int(2 * engine.options().max_seqs + 8);
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
    svr.set_default_headers({{"Access-Control-Allow-Origin", "*"}});

    svr.Get("/health", wrap("/health", false, [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"status":"ok"})", "application/json");
    }));
    svr.Get("/metrics", wrap("/metrics", false, [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics.render(), "text/plain; version=0.0.4");
    }));
    svr.Get("/v1/models", wrap("/v1/models", true, [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(dump(ojson{{"object", "list"}, {"data", ojson::array({model_card()})}}), "application/json");
    }));
    svr.Get(R"(/v1/models/(.+))", wrap("/v1/models/{id}", true, [this](const httplib::Request& req, httplib::Response& res) {
      const std::string name = req.matches[1];
      if (name != opts.model_name)
        throw api::ApiError(404, "The model '" + name + "' does not exist.", "invalid_request_error", "model",
                            "model_not_found");
      res.set_content(dump(model_card()), "application/json");
    }));
    svr.Post("/v1/chat/completions", wrap("/v1/chat/completions", true, [this](const httplib::Request& req,
                                                                               httplib::Response& res) {
      chat_completions(req, res);
    }));
    svr.Post("/v1/completions", wrap("/v1/completions", true, [this](const httplib::Request& req, httplib::Response& res) {
      completions(req, res);
    }));
    // Known paths with the wrong method: 405 (httplib would say 404).
    auto not_allowed = [this](const std::string& allow) {
      return [this, allow](const httplib::Request& req, httplib::Response& res) {
        res.set_header("Allow", allow);
        send_error(res, api::ApiError(405, "Method " + req.method + " is not allowed on " + req.path + " (use " + allow + ").",
                                      "invalid_request_error", "", "method_not_allowed"));
        metrics.request(req.path, 405);
      };
    };
    for (const char* p : {"/v1/chat/completions", "/v1/completions"}) {
      svr.Get(p, not_allowed("POST"));
      svr.Put(p, not_allowed("POST"));
      svr.Patch(p, not_allowed("POST"));
      svr.Delete(p, not_allowed("POST"));
    }
    for (const char* p : {"/health", "/metrics", "/v1/models", R"(/v1/models/(.+))"}) {
      svr.Post(p, not_allowed("GET"));
      svr.Put(p, not_allowed("GET"));
      svr.Patch(p, not_allowed("GET"));
      svr.Delete(p, not_allowed("GET"));
    }
    svr.Options(R"(.*)", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.status = 204;
    });
    // Unmatched routes, oversized bodies and other protocol errors get an OpenAI body too.
    svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      api::ApiError e = status_error(res.status);
      if (res.status == 404) e.message = "Unknown route " + req.method + " " + req.path;
      send_error(res, e);
      metrics.request(res.status == 404 ? "unknown" : req.path, res.status);
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, api::ApiError(500, "internal error: " + what, "server_error"));
    });
  }
};

std::unique_ptr<TokenConstraint> HttpServer::Impl::make_constraint(const api::ResponseFormat& f) {
  if (f.type == api::ResponseFormat::Type::Text) return nullptr;
  std::shared_ptr<const JsonConstraint> c;
  try {
    if (f.type == api::ResponseFormat::Type::JsonObject) {
      c = JsonConstraint::compile_object();
    } else {
      if (f.schema.is_null())
        throw api::ApiError::invalid("response_format.json_schema.schema", "json_schema needs a 'schema' object");
      c = JsonConstraint::compile_schema(nlohmann::json::parse(f.schema.dump()), f.strict);
    }
  } catch (const Error& e) {
    throw api::ApiError::invalid("response_format.json_schema.schema", e.what());
  }
  std::call_once(vocab_once, [this] { vocab = std::make_shared<const TokenVocab>(tok); });
  std::vector<int32_t> eos;
  if (tok.eos_id() >= 0) eos.push_back(tok.eos_id());
  for (int64_t e : model.config().eos_token_ids)
    if (std::find(eos.begin(), eos.end(), int32_t(e)) == eos.end()) eos.push_back(int32_t(e));
  return std::make_unique<JsonTokenConstraint>(c, vocab, eos, size_t(model.config().vocab_size));
}

HttpServer::HttpServer(const model::Model& model, const Tokenizer& tokenizer, runtime::Engine& engine, ServerOptions opts)
    : impl_(std::make_unique<Impl>(model, tokenizer, engine, std::move(opts))) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::bind() {
  auto& o = impl_->opts;
  if (o.port == 0) {
    impl_->bound_port = impl_->svr.bind_to_any_port(o.host.c_str());
    if (impl_->bound_port < 0) fail("cannot listen on ", o.host, " (any port)");
  } else {
    if (!impl_->svr.bind_to_port(o.host.c_str(), o.port))
      fail("cannot listen on ", o.host, ":", o.port, " (is the port in use, or the address not local?)");
    impl_->bound_port = o.port;
  }
}

void HttpServer::serve() { impl_->svr.listen_after_bind(); }
void HttpServer::stop() {
  if (impl_ && impl_->svr.is_running()) impl_->svr.stop();
}
int HttpServer::port() const { return impl_->bound_port; }

}  // namespace dsv3::server
