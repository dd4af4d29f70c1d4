#include "server/request_path.h"

#include <httplib.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <optional>

#include "api/errors.h"

namespace dsv3::server {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Choice {
  std::shared_ptr<runtime::Stream> stream;
  std::optional<runtime::FinishInfo> done;
};

// One request in flight. Held by the response's content provider; when httplib drops the
// response without running it to the end (the client left before the headers went out),
// the destructor still takes the sequences out of the engine.
struct Exchange {
  ServeContext& ctx;
  std::vector<Choice> choices;
  std::vector<size_t> prompt_of;
  int64_t prompt_tokens = 0;
  bool include_usage = false;
  std::unique_ptr<ChoiceRenderer> render;
  std::string id;
  int64_t created = std::time(nullptr);

  Exchange(ServeContext& c, Plan& plan) : ctx(c), render(std::move(plan.renderer)) {
    prompt_of = std::move(plan.prompt_of);
    prompt_tokens = plan.prompt_tokens;
    include_usage = plan.include_usage;
    id = random_id(render->id_prefix());
    for (auto& s : ctx.submit_all(plan.gens)) choices.push_back(Choice{std::move(s), std::nullopt});
  }
  ~Exchange() { cancel(); }

  bool cancel() {
    for (auto& c : choices)
      if (!c.done) c.stream->cancel();
    return false;
  }

  ojson envelope(const char* object) const {
    return ojson{{"id", id}, {"object", object}, {"created", created}, {"model", ctx.opts.model_name},
                 {"system_fingerprint", "dsv3"}};
  }

  // Prompt tokens counted once per prompt, and the cache hits of each prompt's first choice.
  ojson usage() const {
    int64_t completion = 0, cached = 0, drafted = 0, accepted = 0;
    for (size_t i = 0; i < choices.size(); ++i) {
      completion += choices[i].done->completion_tokens;
      if (i == 0 || prompt_of[i] != prompt_of[i - 1]) cached += choices[i].done->cached_tokens;
      drafted += choices[i].done->drafts.drafted_total();
      accepted += choices[i].done->drafts.accepted_total();
    }
    ojson u{{"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion},
            {"total_tokens", prompt_tokens + completion},
            {"prompt_tokens_details", {{"cached_tokens", cached}}}};
    // Speculative decoding's drafts, in the fields OpenAI uses for predicted outputs.
    if (drafted > 0)
      u["completion_tokens_details"] = {{"accepted_prediction_tokens", accepted},
                                        {"rejected_prediction_tokens", drafted - accepted}};
    return u;
  }

  // Runs the choices to the end. `on_event(i, event)` sees each token, `on_finish(i)` each
  // end; either returns false once the client is gone, which cancels every choice. Between
  // events, `idle()` is called about every 2 s (non-streaming: a keep-alive byte).
  bool drive(const std::function<bool(size_t, const runtime::TokenEvent&)>& on_event,
             const std::function<bool(size_t)>& on_finish, const std::function<bool()>& idle) {
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
          if (!on_event(i, ev)) return cancel();
        }
        if (auto f = c.stream->finished()) {
          c.done = f;
          ctx.record(*f);
          progressed = true;
          if (!on_finish(i)) return cancel();
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
          if (!on_event(i, ev)) return cancel();
          last_io = Clock::now();
        }
        break;
      }
      if (Clock::now() - last_io > 2s) {
        if (!idle()) return cancel();
        last_io = Clock::now();
      }
    }
  }

  // SSE: a chunk per choice object, error events for failed choices, usage, [DONE].
  bool stream(httplib::DataSink& sink) {
    auto send = [&](const ojson& j) {
      const std::string line = "data: " + dump(j) + "\n\n";
      return sink.write(line.data(), line.size());
    };
    auto chunk = [&](ojson choice) {
      ojson c = envelope(render->chunk_object());
      c["choices"] = ojson::array({std::move(choice)});
      return send(c);
    };
    for (size_t i = 0; i < choices.size(); ++i) {
      ojson open = render->opening(i);
      if (!open.is_null() && !chunk(std::move(open))) return cancel();
    }
    const bool ok = drive(
        [&](size_t i, const runtime::TokenEvent& ev) {
          ojson c = render->token(i, ev);
          return c.is_null() || chunk(std::move(c));
        },
        [&](size_t i) {
          const runtime::FinishInfo& f = *choices[i].done;
          for (ojson& c : render->finish(i, f))
            if (!chunk(std::move(c))) return false;
          if (f.reason != runtime::FinishReason::Error) return true;
          return send(api::ApiError(500, f.error, "server_error").to_json());
        },
        [] { return true; });
    if (!ok) return false;
    if (include_usage) {
      ojson u = envelope(render->chunk_object());
      u["choices"] = ojson::array();
      u["usage"] = usage();
      send(u);
    }
    const std::string done = "data: [DONE]\n\n";
    sink.write(done.data(), done.size());
    sink.done();
    return true;
  }

  // One JSON body once every choice is done. The response is chunked so that a client that
  // hangs up is noticed (a keep-alive space, valid before JSON, every 2 s) and its sequences
  // cancelled rather than run to the end.
  bool whole(httplib::DataSink& sink) {
    const bool ok = drive(
        [&](size_t i, const runtime::TokenEvent& ev) {
          render->token(i, ev);
          return true;
        },
        [&](size_t i) {
          render->finish(i, *choices[i].done);
          return true;
        },
        [&] { return sink.write(" ", 1); });
    if (!ok) return false;
    ojson body = envelope(render->body_object());
    body["choices"] = ojson::array();
    for (size_t i = 0; i < choices.size(); ++i) {
      const runtime::FinishInfo& f = *choices[i].done;
      if (f.reason == runtime::FinishReason::Error) {
        body = api::ApiError(500, f.error, "server_error").to_json();
        break;
      }
      body["choices"].push_back(render->final_choice(i, f));
    }
    if (body.contains("choices")) body["usage"] = usage();
    const std::string text = dump(body);
    sink.write(text.data(), text.size());
    sink.done();
    return true;
  }
};

}  // namespace

void respond(ServeContext& ctx, Plan plan, httplib::Response& res) {
  auto ex = std::make_shared<Exchange>(ctx, plan);
  if (plan.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream",
                                     [ex](size_t, httplib::DataSink& sink) { return ex->stream(sink); });
  } else {
    res.set_chunked_content_provider("application/json",
                                     [ex](size_t, httplib::DataSink& sink) { return ex->whole(sink); });
  }
}

}  // namespace dsv3::server
