// The chat page `dsv3 serve` shows at `/` (src/server/webui/index.html, compiled into the
// binary by cmake/embed.cmake): one self-contained HTML file with its script and styles
// inline, no external fetches, talking to /v1/chat/completions and /v1/models.
#pragma once

#include <string_view>

namespace dsv3::server {

std::string_view webui_page();

}  // namespace dsv3::server
