// libFuzzer target for io::parse_safetensors_header. Any input may be rejected with dsv3::Error;
// any other exception, a crash, a sanitizer report or an accepted header that breaks the
// documented invariants is a bug.
//
// Each input is tried twice: whole, as header JSON with an empty data section, and with its
// first 8 bytes read as a little-endian data-section size followed by the header JSON, so the
// fuzzer can reach headers that are accepted.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/error.h"
#include "io/safetensors.h"

namespace {

void check_invariants(const dsv3::io::SafetensorsHeader& h, uint64_t data_size) {
  uint64_t at = 0;
  for (const dsv3::io::TensorInfo& t : h.tensors) {
    if (t.begin != at || t.end < t.begin) std::abort();
    uint64_t bytes = dsv3::io::dtype_size(t.dtype);
    bool zero = false;
    for (int64_t d : t.shape) {
      if (d < 0) std::abort();
      zero |= d == 0;
    }
    if (zero) bytes = 0;
    else
      for (int64_t d : t.shape)
        if (__builtin_mul_overflow(bytes, uint64_t(d), &bytes)) std::abort();
    if (bytes != t.nbytes() || t.numel() * dsv3::io::dtype_size(t.dtype) != bytes) std::abort();
    at = t.end;
  }
  if (at != data_size) std::abort();
}

void try_parse(std::string_view json, uint64_t data_size) {
  try {
    check_invariants(dsv3::io::parse_safetensors_header(json, data_size, "fuzz.safetensors"), data_size);
  } catch (const dsv3::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view all(reinterpret_cast<const char*>(data), size);
  try_parse(all, 0);
  if (size >= 8) {
    uint64_t data_size = 0;
    for (int i = 0; i < 8; ++i) data_size |= uint64_t(data[i]) << (8 * i);
    try_parse(all.substr(8), data_size);
  }
  return 0;
}
