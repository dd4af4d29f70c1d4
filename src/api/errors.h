// Errors of the OpenAI-compatible API: an HTTP status plus the body OpenAI clients parse,
// {"error": {"message", "type", "param", "code"}}. Everything in src/api that rejects a
// request throws ApiError; the server turns it into the response as is.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

namespace dsv3::api {

struct ApiError : std::exception {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";  //!< authentication_error, not_found_error, ...
  std::string param;                           //!< offending field ("messages[2].content"); "" = none
  std::string code;                            //!< machine-readable code; "" = none

  ApiError() = default;
  ApiError(int status_, std::string message_, std::string type_ = "invalid_request_error", std::string param_ = "",
           std::string code_ = "")
      : status(status_),
        message(std::move(message_)),
        type(std::move(type_)),
        param(std::move(param_)),
        code(std::move(code_)) {}

  //! 400 invalid_request_error naming `param`.
  static ApiError invalid(std::string param_, std::string message_) {
    return ApiError(400, std::move(message_), "invalid_request_error", std::move(param_));
  }

  const char* what() const noexcept override { return message.c_str(); }

  //! The response body; param and code are null when empty.
  nlohmann::ordered_json to_json() const {
    nlohmann::ordered_json e;
    e["message"] = message;
    e["type"] = type;
    e["param"] = param.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(param);
    e["code"] = code.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(code);
    return {{"error", std::move(e)}};
  }
};

}  // namespace dsv3::api
