// `dsv3 serve`: the HTTP API on cpp-httplib: routes, authentication, metrics and error bodies
// here. OpenAI chat and text completions, the OpenAI Responses API and the Anthropic Messages
// API take one path (request_path.h) that hands one sequence per choice to the
// runtime::Engine and turns its token events into the API's responses or SSE events
// (chat_route.cc, text_route.cc, responses_route.cc, messages_route.cc). The chat page at `/`
// (webui/) calls the same routes. Every error is an OpenAI error body (an Anthropic one on
// /v1/messages); nothing a client sends can stop the server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "model/model.h"
#include "runtime/engine.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (see HttpServer::port())
  std::string api_key;              // "": no authentication
  std::string model_name;           // the id clients use
  size_t max_body_bytes = 8u << 20;  // larger bodies get 413
  int max_n = 16;                   // choices per request
  int http_threads = 0;             // 0: 2 * max_seqs + 8
  bool webui = true;                // the chat page at /
};

class HttpServer {
 public:
  HttpServer(const model::Model& model, const Tokenizer& tokenizer, runtime::Engine& engine, ServerOptions opts);
  ~HttpServer();
  //! Binds host:port; throws dsv3::Error when it cannot.
  void bind();
  //! Serves until stop() (call bind() first).
  void serve();
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dsv3::server
