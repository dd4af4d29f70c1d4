#include "server/http_server.h"

#include <httplib.h>

#include <atomic>
#include <memory>

#include "api/errors.h"
#include "base/error.h"
#include "server/context.h"
#include "server/request_path.h"
#include "server/token_routes.h"
#include "server/webui.h"

namespace dsv3::server {
namespace {

// Where the chat page takes the nonce its Content-Security-Policy names.
constexpr std::string_view kNonceSlot = "__CSP_NONCE__";

// Whose error bodies a route speaks.
enum class Dialect { OpenAI, Anthropic };

Dialect dialect_of(const std::string& path) {
  return path.starts_with("/v1/messages") ? Dialect::Anthropic : Dialect::OpenAI;
}

// Anthropic's body: {"type": "error", "error": {"type", "message"}}, with its type names.
ojson anthropic_error_body(const api::ApiError& e) {
  std::string type = e.type;
  if (e.status == 413) type = "request_too_large";
  else if (e.status == 404) type = "not_found_error";
  else if (e.status >= 500) type = "api_error";
  std::string message = e.message;
  if (!e.param.empty() && message.find(e.param) == std::string::npos) message = e.param + ": " + message;
  return ojson{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
}

void send_error(httplib::Response& res, const api::ApiError& e, Dialect d = Dialect::OpenAI) {
  res.status = e.status;
  res.set_content(dump(d == Dialect::Anthropic ? anthropic_error_body(e) : e.to_json()), "application/json");
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

}  // namespace

struct HttpServer::Impl {
  ServeContext ctx;
  const ServerOptions& opts = ctx.opts;
  runtime::Engine& engine = ctx.engine;
  Metrics& metrics = ctx.metrics;
  httplib::Server svr;
  int bound_port = -1;

  Impl(const model::Model& m, const Tokenizer& t, runtime::Engine& e, ServerOptions o) : ctx(m, t, e, std::move(o)) {
    setup_metrics();
    routes();
  }
  ~Impl() { engine.set_step_observer({}); }

  // Expert parallelism: the host's counters, copied after every step on the engine's
  // thread (the host is not thread-safe) and read at scrape time.
  std::vector<std::unique_ptr<std::atomic<double>>> ep_values;

  void setup_metrics() {
    const model::ExpertHost* host = ctx.model.expert_host();
    if (host)
      for (const auto& [name, value] : host->counters()) {
        ep_values.push_back(std::make_unique<std::atomic<double>>(value));
        std::atomic<double>* v = ep_values.back().get();
        metrics.gauge("dsv3_expert_parallel_" + name, "Expert parallelism (docs/scale-out.md): " + name + ".",
                      [v] { return v->load(); }, name.ends_with("_total"));
      }
    engine.set_step_observer([this, host](int64_t seqs, int64_t tokens, double secs) {
      metrics.histogram("dsv3_batch_size").observe(double(seqs));
      metrics.histogram("dsv3_step_tokens").observe(double(tokens));
      metrics.histogram("dsv3_step_seconds").observe(secs);
      if (host) {
        const auto c = host->counters();
        for (size_t i = 0; i < c.size() && i < ep_values.size(); ++i) ep_values[i]->store(c[i].second);
      }
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

  // The key as OpenAI clients send it (Authorization: Bearer) or Anthropic's (x-api-key),
  // on every route.
  bool authorized(const httplib::Request& req, httplib::Response& res, Dialect d) {
    if (opts.api_key.empty()) return true;
    const std::string bearer = req.get_header_value("Authorization");
    const std::string x_key = req.get_header_value("x-api-key");
    if (bearer.empty() && x_key.empty()) {
      send_error(res, api::ApiError(401, "Missing API key: send the header 'Authorization: Bearer KEY' or 'x-api-key: KEY'.",
                                    "authentication_error", "", "invalid_api_key"), d);
      return false;
    }
    if (bearer != "Bearer " + opts.api_key && x_key != opts.api_key) {
      send_error(res, api::ApiError(401, "Incorrect API key provided.", "authentication_error", "", "invalid_api_key"), d);
      return false;
    }
    return true;
  }

  ojson model_card() const {
    return ojson{{"id", opts.model_name}, {"object", "model"}, {"created", ctx.created}, {"owned_by", "dsv3"},
                 {"max_model_len", engine.options().ctx_size},
                 {"draft_tokens", engine.options().draft}};  // speculative decoding: MTP drafts per step (0: off)
  }

  // --- routes ---------------------------------------------------------------------------

  // Runs a handler: API errors become error bodies of the route's dialect, anything else a
  // 500; the outcome is counted by endpoint and status.
  httplib::Server::Handler wrap(const std::string& endpoint, bool auth,
                                std::function<void(const httplib::Request&, httplib::Response&)> f) {
    const Dialect d = dialect_of(endpoint);
    return [this, endpoint, auth, f, d](const httplib::Request& req, httplib::Response& res) {
      try {
        if (!auth || authorized(req, res, d)) f(req, res);
      } catch (const api::ApiError& e) {
        send_error(res, e, d);
      } catch (const Error& e) {
        send_error(res, api::ApiError(400, e.what()), d);
      } catch (const std::exception& e) {
        send_error(res, api::ApiError(500, std::string("internal error: ") + e.what(), "server_error"), d);
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
      respond(ctx, plan_chat_completion(ctx, req.body), res);
    }));
    svr.Post("/v1/completions", wrap("/v1/completions", true, [this](const httplib::Request& req, httplib::Response& res) {
      respond(ctx, plan_text_completion(ctx, req.body), res);
    }));
    svr.Post("/v1/responses", wrap("/v1/responses", true, [this](const httplib::Request& req, httplib::Response& res) {
      respond(ctx, plan_response(ctx, req.body), res);
    }));
    svr.Post("/v1/messages", wrap("/v1/messages", true, [this](const httplib::Request& req, httplib::Response& res) {
      respond(ctx, plan_message(ctx, req.body), res);
    }));
    svr.Post("/v1/messages/count_tokens", wrap("/v1/messages/count_tokens", true,
                                               [this](const httplib::Request& req, httplib::Response& res) {
      res.set_content(count_message_tokens(ctx, req.body), "application/json");
    }));
    // The chat page: no key needed to load it; it asks for one when the API answers 401.
    if (opts.webui)
      svr.Get("/", wrap("/", false, [](const httplib::Request&, httplib::Response& res) {
        // Only the page's own script and style run (a fresh nonce per load), nothing frames it
        // (it holds the API key), and it talks to this server only.
        const std::string nonce = random_id("");
        std::string page(webui_page());
        for (size_t at = page.find(kNonceSlot); at != std::string::npos; at = page.find(kNonceSlot, at))
          page.replace(at, kNonceSlot.size(), nonce);
        res.set_header("Content-Security-Policy",
                       "default-src 'none'; script-src 'nonce-" + nonce + "'; style-src 'nonce-" + nonce +
                           "'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
                           "frame-ancestors 'none'");
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("Cache-Control", "no-store");
        res.set_content(page, "text/html; charset=utf-8");
      }));
    for (const char* p : {"/tokenize", "/v1/tokenize"})
      svr.Post(p, wrap(p, true, [this](const httplib::Request& req, httplib::Response& res) {
        res.set_content(tokenize_body(ctx, req.body), "application/json");
      }));
    for (const char* p : {"/detokenize", "/v1/detokenize"})
      svr.Post(p, wrap(p, true, [this](const httplib::Request& req, httplib::Response& res) {
        res.set_content(detokenize_body(ctx, req.body), "application/json");
      }));
    // Known paths with the wrong method: 405 (httplib would say 404).
    auto not_allowed = [this](const std::string& allow) {
      return [this, allow](const httplib::Request& req, httplib::Response& res) {
        res.set_header("Allow", allow);
        send_error(res, api::ApiError(405, "Method " + req.method + " is not allowed on " + req.path + " (use " + allow + ").",
                                      "invalid_request_error", "", "method_not_allowed"), dialect_of(req.path));
        metrics.request(req.path, 405);
      };
    };
    for (const char* p : {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages",
                          "/v1/messages/count_tokens", "/tokenize", "/detokenize"}) {
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
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, x-api-key, anthropic-version, anthropic-beta");
      res.status = 204;
    });
    // Unmatched routes, oversized bodies and other protocol errors get an OpenAI body too.
    svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;
      api::ApiError e = status_error(res.status);
      if (res.status == 404) e.message = "Unknown route " + req.method + " " + req.path;
      send_error(res, e, dialect_of(req.path));
      metrics.request(res.status == 404 ? "unknown" : req.path, res.status);
    });
    svr.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
      std::string what = "unknown";
      try {
        if (ep) std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      send_error(res, api::ApiError(500, "internal error: " + what, "server_error"), dialect_of(req.path));
    });
  }
};

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
