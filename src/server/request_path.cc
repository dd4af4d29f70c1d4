#include "server/request_path.h"

#include <httplib.h>

#include <chrono>
#include <functional>

namespace dsv3::server {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// One request in flight. Held by the response's content provider; when httplib drops the
// response without running it to the end (the client left before the headers went out),
// the destructor still takes the sequences out of the engine.
struct Exchange {
  ServeContext& ctx;
  std::vector<std::shared_ptr<runtime::Stream>> streams;  // one per choice
  // Each choice's finish once it ended: protocols read them in place (an echo's
  // prompt_logprobs can be large).
  std::vector<runtime::FinishInfo> finished;
  std::vector<bool> done;
  std::vector<size_t> prompt_of;
  int64_t prompt_tokens = 0;
  std::unique_ptr<Protocol> protocol;

  Exchange(ServeContext& c, Plan& plan) : ctx(c), protocol(std::move(plan.protocol)) {
    prompt_of = std::move(plan.prompt_of);
    prompt_tokens = plan.prompt_tokens;
    streams = ctx.submit_all(plan.gens);
    finished.resize(streams.size());
    done.assign(streams.size(), false);
  }
  ~Exchange() { cancel(); }

  bool cancel() {
    for (size_t i = 0; i < streams.size(); ++i)
      if (!done[i]) streams[i]->cancel();
    return false;
  }

  Usage usage() const {
    Usage u;
    u.prompt = prompt_tokens;
    for (size_t i = 0; i < finished.size(); ++i) {
      u.completion += finished[i].completion_tokens;
      if (i == 0 || prompt_of[i] != prompt_of[i - 1]) u.cached += finished[i].cached_tokens;
      u.drafted += finished[i].drafts.drafted_total();
      u.accepted += finished[i].drafts.accepted_total();
    }
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
      for (size_t i = 0; i < streams.size(); ++i) {
        if (done[i]) continue;
        all_done = false;
        runtime::TokenEvent ev;
        while (streams[i]->next(ev, 0ms)) {
          progressed = true;
          if (!on_event(i, ev)) return cancel();
        }
        if (auto f = streams[i]->finished()) {
          finished[i] = std::move(*f);
          done[i] = true;
          ctx.record(finished[i]);
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
      for (size_t i = 0; i < streams.size(); ++i) {
        if (done[i]) continue;
        runtime::TokenEvent ev;
        if (streams[i]->next(ev, 20ms)) {
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
                          [&](size_t i) { return send(protocol->finish(i, finished[i])); }, [] { return true; });
    if (!ok) return false;
    send(protocol->close(finished, usage()));
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
          protocol->finish(i, finished[i]);
          return true;
        },
        [&] { return sink.write(" ", 1); });
    if (!ok) return false;
    const std::string text = dump(protocol->body(finished, usage()));
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
