#include "io/dtype.h"

#include <array>

namespace dsv3::io {
namespace {
struct Entry {
  DType type;
  const char* name;
  size_t size;
};
constexpr std::array<Entry, 16> kTable = {{
    {DType::F64, "F64", 8},         {DType::F32, "F32", 4},        {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},       {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E8M0, "F8_E8M0", 1}, {DType::I64, "I64", 8},        {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},         {DType::I8, "I8", 1},          {DType::U64, "U64", 8},
    {DType::U32, "U32", 4},         {DType::U16, "U16", 2},        {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};
}  // namespace

size_t dtype_size(DType t) { return kTable[size_t(t)].size; }
const char* dtype_name(DType t) { return kTable[size_t(t)].name; }
std::optional<DType> parse_dtype(std::string_view s) {
  for (const Entry& e : kTable)
    if (s == e.name) return e.type;
  return std::nullopt;
}

}  // namespace dsv3::io
