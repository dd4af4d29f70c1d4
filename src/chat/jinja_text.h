// Text helpers for the Jinja renderer. Chat templates are rendered by @huggingface/jinja
// (JavaScript) in the reference, so these helpers reproduce the JavaScript string and number
// semantics the renderer observes, on UTF-8 strings: JavaScript's whitespace set (trim, \s),
// UTF-16 lengths, Number-to-String formatting, JSON.stringify string quoting, parseInt /
// parseFloat. All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsv3::jinja {

//! Decodes the code point starting at s[i] and advances i past it. An invalid UTF-8 byte
//! yields U+FFFD and advances by one byte, so every input makes progress (callers that copy
//! text copy the original bytes, so invalid input passes through unchanged).
char32_t next_code_point(std::string_view s, size_t& i);
//! Appends the UTF-8 encoding of `cp` (surrogates and values above U+10FFFF become U+FFFD).
void append_utf8(std::string& out, char32_t cp);
//! The code points of `s`, each as its own UTF-8 string (JavaScript's Array.from(string)).
std::vector<std::string> split_code_points(std::string_view s);
//! Length in UTF-16 code units, as JavaScript's String.prototype.length counts.
size_t utf16_length(std::string_view s);

//! JavaScript's WhiteSpace + LineTerminator set (what \s, trim() and trimEnd() use).
bool is_js_space(char32_t cp);
//! Length in bytes of the JavaScript-whitespace run starting at s[i] (0 if none).
size_t js_space_at(std::string_view s, size_t i);
//! String.prototype.trim / trimStart / trimEnd.
std::string_view js_trim(std::string_view s);
std::string_view js_trim_start(std::string_view s);
std::string_view js_trim_end(std::string_view s);

//! String.prototype.toUpperCase / toLowerCase for ASCII, Latin-1, Latin Extended-A, Greek,
//! Cyrillic and fullwidth Latin; other code points are returned unchanged.
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);

//! Number.prototype.toString(): "1", "0.1", "1e+21", "1.5e-7", "NaN", "-Infinity".
std::string js_number_to_string(double x);
//! The text @huggingface/jinja prints for a float: "-0.0", "3.0" for integral values, else
//! js_number_to_string.
std::string js_float_to_string(double x);

//! JSON.stringify(string): quotes and escapes " \ and control characters (\b \f \n \r \t,
//! else \u00xx). With ensure_ascii, every code unit >= 0x7f becomes \uxxxx (UTF-16 units,
//! lowercase hex), as Python's json.dumps(ensure_ascii=True) does.
void append_json_string(std::string& out, std::string_view s, bool ensure_ascii);

//! JavaScript parseInt(s, 10) and parseFloat(s); `ok` is false where JavaScript gives NaN.
double js_parse_int(std::string_view s, bool& ok);
double js_parse_float(std::string_view s, bool& ok);
//! JavaScript's ToNumber(string) (used by loose equality): NaN where the text is not a number.
double js_string_to_number(std::string_view s);

}  // namespace dsv3::jinja
