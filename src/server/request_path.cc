#include "server/request_path.h"

#include <httplib.h>

#include <chrono>
#include <functional>
#include <optional>

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
  std::unique_ptr<Protocol> protocol;

  Exchange(ServeContext& c, Plan& plan) : ctx(c), protocol(std::move(plan.protocol)) {
    prompt_of = std::move(plan.prompt_of);
    prompt_tokens = plan.prompt_tokens;
    for (auto& s : ctx.submit_all(plan.gens)) choices.push_back(Choice{std::move(s), std::nullopt});
  }
  ~Exchange() { cancel(); }

  bool cancel() {
    for (auto& c : choices)
      if (!c.done) c.stream->cancel();
    return false;
  }

  Usage usage() const {
    Usage u;
    u.prompt = prompt_tokens;
    for (size_t i = 0; i < choices.size(); ++i) {
      u.completion += choices[i].done->completion_tokens;
      if (i == 0 || prompt_of[i] != prompt_of[i - 1]) u.cached += choices[i].done->cached_tokens;
      u.drafted += choices[i].done->drafts.drafted_total();
      u.accepted += choices[i].done->drafts.accepted_total();
    }
    return u;
  }

  std::vector<runtime::FinishInfo> finishes() const {
    std::vector<runtime::FinishInfo> f;
    for (const Choice& c : choices) f.push_back(*c.done);
    return f;
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

  // Server-sent events, as the protocol writes them.
  bool stream(httplib::DataSink& sink) {
    auto send = [&](const std::string& s) { return s.empty() || sink.write(s.data(), s.size()); };
    if (!send(protocol->open())) return cancel();
    const bool ok = drive([&](size_t i, const runtime::TokenEvent& ev) { return send(protocol->token(i, ev)); },
                          [&](size_t i) { return send(protocol->finish(i, *choices[i].done)); }, [] { return true; });
    if (!ok) return false;
    send(protocol->close(finishes(), usage()));
    sink.done();
    return true;
  }

  // One JSON body once every choice is done. The response is chunked so that a client that
  // hangs up is noticed (a keep-alive space, valid before JSON, every 2 s) and its sequences
  // cancelled rather than run to the end.
  bool whole(httplib::DataSink& sink) {
    const bool ok = drive(
        [&](size_t i, const runtime::TokenEvent& ev) {
          protocol->token(i, ev);
          return true;
        },
        [&](size_t i) {
          protocol->finish(i, *choices[i].done);
          return true;
        },
        [&] { return sink.write(" ", 1); });
    if (!ok) return false;
    const std::string text = dump(protocol->body(finishes(), usage()));
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
