// The safetensors dtype table. The reader accepts every dtype the format defines so a file
// with extra tensors still opens; which dtype a weight may have is the loader's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace dsv3::io {

enum class DType : uint8_t {
  F64, F32, F16, BF16, F8_E4M3, F8_E5M2, F8_E8M0, I64, I32, I16, I8, U64, U32, U16, U8, BOOL
};

//! Bytes per element.
size_t dtype_size(DType t);
//! The safetensors spelling ("F8_E4M3", "BF16", ...).
const char* dtype_name(DType t);
//! Parses the safetensors spelling; nullopt for anything unknown.
std::optional<DType> parse_dtype(std::string_view s);

}  // namespace dsv3::io
