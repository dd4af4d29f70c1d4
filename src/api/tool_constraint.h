// tool_choice "required" or a named function, enforced while sampling: the answer is exactly
// one complete tool call in the template's format, then end of sequence. Built as the paths of
// a SegmentConstraint (sampling/segment_constraint.h), after the forced prefix prompt.h gives:
//   V3   required: NAME "\n```json\n" ARGS "\n```" <call end> <calls end>   (one path per tool)
//        named:    ARGS "\n```" <call end> <calls end>         (the name is in the prefix)
//   V3.1 required: NAME <tool sep> ARGS <call end> <calls end>
//        named:    ARGS <call end> <calls end>
// ARGS is JSON matching the function's `parameters` (strict when the tool says so). A schema
// the JSON-schema compiler does not support (sampling/json_schema.h lists the keywords, e.g.
// "pattern" or "minimum") falls back to any JSON object, as do absent parameters: tools come
// from clients written for other servers, and refusing a whole tool list over one validation
// keyword would break them, while the arguments stay a JSON object either way.
// One call only, even when parallel_tool_calls allows more: a single call satisfies both
// choices and is the one shape that can be guaranteed to close within max_tokens.
#pragma once

#include <cstdint>
#include <vector>

#include "api/prompt.h"
#include "api/requests.h"
#include "sampling/segment_constraint.h"
#include "tokenizer/tokenizer.h"

namespace dsv3::api {

//! The paths a forced call follows, starting with the forced prefix's ids (one Token segment
//! each, so the constraint follows what the engine forces); empty when the request forces no
//! call (tool_choice auto or none, or no tools offered).
std::vector<SegmentPath> forced_call_paths(const ChatPrompt& prompt, const ChatCompletionRequest& request,
                                           const std::vector<int32_t>& forced_ids, const Tokenizer& tok);

//! The compiled argument schema of a tool: its parameters, or any JSON object when it has none
//! or they use a keyword the compiler does not support.
std::shared_ptr<const JsonConstraint> tool_arguments_schema(const ToolDef& tool);

}  // namespace dsv3::api
