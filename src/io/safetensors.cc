#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace dsv3::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kMetadataKey = "__metadata__";

std::string errno_text(int e) { return std::generic_category().message(e); }

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Byte size of a tensor whose dims are known non-negative; nullopt on 64-bit overflow. A zero
// dim makes the tensor empty however large the other dims are, so it is checked first.
std::optional<uint64_t> byte_size(DType dtype, const std::vector<int64_t>& shape) {
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, uint64_t(d), &n)) return std::nullopt;
  return n;
}

template <typename... Args>
[[noreturn]] void tensor_fail(const std::string& file, const std::string& name, Args&&... args) {
  fail(file, ": tensor '", name, "': ", std::forward<Args>(args)...);
}

// nlohmann keeps the last of duplicate keys silently; a header that names a tensor twice is
// ambiguous about which entry owns its bytes, so it is rejected here instead.
json parse_json(std::string_view text, const std::string& file, const char* what) {
  std::vector<std::set<std::string, std::less<>>> open_objects;
  auto reject_duplicates = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second)
        fail(file, ": duplicate key '", key, "' in ", what);
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), reject_duplicates);
  } catch (const json::exception& e) {
    fail(file, ": ", what, " is not valid JSON: ", e.what());
  }
}

const json& field(const json& entry, const char* key, const std::string& file,
                  const std::string& name) {
  const auto it = entry.find(key);
  if (it == entry.end()) tensor_fail(file, name, "missing \"", key, "\"");
  return *it;
}

TensorInfo parse_tensor(const std::string& name, const json& entry, uint64_t data_size,
                        const std::string& file) {
  if (!entry.is_object()) tensor_fail(file, name, "entry is a JSON ", entry.type_name(), ", not an object");
  TensorInfo t;
  t.name = name;

  const json& dtype = field(entry, "dtype", file, name);
  if (!dtype.is_string()) tensor_fail(file, name, "\"dtype\" is a JSON ", dtype.type_name(), ", not a string");
  const auto parsed = parse_dtype(dtype.get_ref<const std::string&>());
  if (!parsed) tensor_fail(file, name, "unknown dtype '", dtype.get_ref<const std::string&>(), "'");
  t.dtype = *parsed;

  const json& shape = field(entry, "shape", file, name);
  if (!shape.is_array()) tensor_fail(file, name, "\"shape\" is a JSON ", shape.type_name(), ", not an array");
  for (const json& d : shape) {
    // nlohmann stores non-negative integers as unsigned, negative ones as signed.
    if (d.is_number_unsigned()) {
      const uint64_t v = d.get<uint64_t>();
      if (v > uint64_t(std::numeric_limits<int64_t>::max()))
        tensor_fail(file, name, "shape dimension ", v, " is too large");
      t.shape.push_back(int64_t(v));
    } else if (d.is_number_integer()) {
      tensor_fail(file, name, "negative shape dimension ", d.get<int64_t>());
    } else {
      tensor_fail(file, name, "shape holds a JSON ", d.type_name(), ", not an integer");
    }
  }

  const json& offsets = field(entry, "data_offsets", file, name);
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned())
    tensor_fail(file, name, "\"data_offsets\" must be two non-negative integers");
  t.begin = offsets[0].get<uint64_t>();
  t.end = offsets[1].get<uint64_t>();
  if (t.end < t.begin)
    tensor_fail(file, name, "data offsets [", t.begin, ", ", t.end, ") end before they begin");
  if (t.end > data_size)
    tensor_fail(file, name, "data offsets [", t.begin, ", ", t.end, ") exceed the data section of ",
                data_size, " bytes");

  const auto nbytes = byte_size(t.dtype, t.shape);
  if (!nbytes)
    tensor_fail(file, name, "shape ", shape_str(t.shape), " of ", dtype_name(t.dtype),
                " overflows a 64-bit byte count");
  if (*nbytes != t.nbytes())
    tensor_fail(file, name, "data offsets [", t.begin, ", ", t.end, ") do not match shape ",
                shape_str(t.shape), " of ", dtype_name(t.dtype), " (", *nbytes, " bytes)");
  return t;
}

void write_all(int fd, const uint8_t* p, uint64_t n, const std::string& file) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, std::min<uint64_t>(n, uint64_t(1) << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(file, ": write failed: ", errno_text(errno));
    }
    p += w;
    n -= uint64_t(w);
  }
}

// Writes through path.tmp and renames it into place, so a reader (or a crash) never sees a
// partial file; the tmp file is removed when anything fails.
template <typename Body>
void write_atomically(const std::string& path, Body&& body) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, ": cannot create: ", errno_text(errno));
  try {
    body(fd, tmp);
    if (::fsync(fd) != 0) fail(tmp, ": fsync failed: ", errno_text(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) fail(tmp, ": close failed: ", errno_text(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      fail(path, ": cannot rename ", tmp, " into place: ", errno_text(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

// Index shard names must be plain file names so a hostile index cannot reach outside the folder.
std::map<std::string, std::string> read_index(const std::string& index_path) {
  const MappedFile file = MappedFile::open(index_path);
  const json root = parse_json({reinterpret_cast<const char*>(file.data()), file.size()},
                               index_path, "index");
  if (!root.is_object()) fail(index_path, ": index is a JSON ", root.type_name(), ", not an object");
  const auto wm = root.find("weight_map");
  if (wm == root.end() || !wm->is_object()) fail(index_path, ": missing \"weight_map\" object");
  std::map<std::string, std::string> out;
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string()) fail(index_path, ": weight_map entry for '", name, "' is not a string");
    const auto& s = shard.get_ref<const std::string&>();
    if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos)
      fail(index_path, ": weight_map entry for '", name, "' names '", s, "', not a file in the folder");
    out.emplace(name, s);
  }
  return out;
}

}  // namespace

// ---- MappedFile ----------------------------------------------------------------------------

namespace {

constexpr uint64_t kHugePage = uint64_t(2) << 20;

struct HugeRegion {
  void* region;     // what to unmap
  uint64_t region_size;
  uint8_t* data;    // the file's bytes, 2 MB aligned inside the region
};

// Reads all of fd into a fresh anonymous region aligned to 2 MB and advised for huge pages,
// then makes it read-only.
HugeRegion read_into_huge_pages(int fd, uint64_t size, const std::string& path, const ByteRanges* only) {
  const uint64_t region_size = size + kHugePage;  // room to align the start
  void* region = ::mmap(nullptr, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED)
    fail(path, ": cannot allocate ", size, " bytes to read the weights into (", errno_text(errno),
         "); the default memory mapping needs no such allocation");
  const uintptr_t start = (reinterpret_cast<uintptr_t>(region) + kHugePage - 1) / kHugePage * kHugePage;
  uint8_t* p = reinterpret_cast<uint8_t*>(start);
  ::madvise(p, size, MADV_HUGEPAGE);  // advice only: without THP this is plain memory
  const ByteRanges whole{{0, size}};
  for (const auto& [begin, end] : only ? *only : whole) {
    if (begin > end || end > size) {
      ::munmap(region, region_size);
      fail(path, ": byte range [", begin, ", ", end, ") is outside the file's ", size, " bytes");
    }
    for (uint64_t done = begin; done < end;) {
      const uint64_t chunk = std::min<uint64_t>(end - done, uint64_t(1) << 30);
      const ssize_t n = ::pread(fd, p + done, chunk, off_t(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : 0;
        ::munmap(region, region_size);
        fail(path, ": cannot read at byte ", done, " of ", size, ": ", err ? errno_text(err) : "unexpected end of file");
      }
      done += uint64_t(n);
    }
  }
  ::mprotect(p, size, PROT_READ);  // the weights are never written
  return {region, region_size, p};
}

}  // namespace

MappedFile MappedFile::open(const std::string& path, WeightMemory memory, const ByteRanges* only) {
  // O_NONBLOCK keeps a FIFO from hanging the open; it has no effect on regular files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(path, ": cannot open: ", errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};  // the mapping outlives the descriptor
  struct stat st;
  if (::fstat(fd, &st) != 0) fail(path, ": cannot stat: ", errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  MappedFile m;
  m.path_ = path;
  m.size_ = uint64_t(st.st_size);
  if (m.size_ == 0) return m;  // mmap rejects a zero length
  if (memory == WeightMemory::HugePages) {
    const HugeRegion h = read_into_huge_pages(fd, m.size_, path, only);
    m.region_ = h.region;
    m.region_size_ = h.region_size;
    m.data_ = h.data;
    m.huge_read_ = true;
    return m;
  }
  // Note: a file truncated by someone else while mapped raises SIGBUS on access; nothing
  // short of copying the file guards against that.
  // The mapping starts on a 2 MB boundary and is advised for huge pages: where the page
  // cache holds the file in 2 MB folios (kernels with large-folio file systems), the kernel
  // can then map them whole, and decode takes far fewer TLB misses. Elsewhere the advice
  // is ignored and this is a plain mapping.
  const uint64_t reserve = m.size_ + kHugePage;
  void* r = ::mmap(nullptr, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) fail(path, ": cannot reserve ", reserve, " bytes of address space: ", errno_text(errno));
  const uintptr_t start = (reinterpret_cast<uintptr_t>(r) + kHugePage - 1) / kHugePage * kHugePage;
  void* p = ::mmap(reinterpret_cast<void*>(start), m.size_, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    ::munmap(r, reserve);
    fail(path, ": cannot map ", m.size_, " bytes: ", errno_text(err));
  }
  ::madvise(p, m.size_, MADV_HUGEPAGE);
  m.data_ = static_cast<const uint8_t*>(p);
  m.region_ = r;
  m.region_size_ = reserve;
  return m;
}

// Sums the "<key> N kB" fields of /proc/self/smaps over the mappings that start inside
// [lo, hi) (a file's bytes may span several when the kernel splits them); 0 where unreadable.
static uint64_t smaps_sum(uintptr_t lo, uintptr_t hi, std::initializer_list<const char*> keys) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (!f) return 0;
  char line[512];
  bool ours = false;
  unsigned long long total = 0;
  unsigned long start = 0, end = 0;
  while (std::fgets(line, sizeof line, f)) {
    // Each mapping's block starts with "start-end perms ...".
    if (std::sscanf(line, "%lx-%lx ", &start, &end) == 2 && std::strchr(line, ' ') &&
        std::strchr(line, '-') < std::strchr(line, ' ')) {
      ours = start >= lo && start < hi;
      continue;
    }
    if (!ours) continue;
    for (const char* key : keys) {
      const size_t n = std::strlen(key);
      unsigned long long kb = 0;
      if (std::strncmp(line, key, n) == 0 && line[n] == ':' && std::sscanf(line + n + 1, " %llu kB", &kb) == 1) total += kb;
    }
  }
  std::fclose(f);
  return total * 1024;
}

uint64_t MappedFile::huge_mapped_bytes() const {
  if (!data_) return 0;
  const uintptr_t p = reinterpret_cast<uintptr_t>(data_);
  return smaps_sum(p, p + size_, {"FilePmdMapped", "AnonHugePages"});
}

uint64_t MappedFile::resident_bytes() const {
  if (!data_) return 0;
  const uintptr_t p = reinterpret_cast<uintptr_t>(data_);
  return smaps_sum(p, p + size_, {"Rss"});
}

void MappedFile::drop_cached_pages() const {
  if (!data_ || huge_read_) return;
  void* p = const_cast<uint8_t*>(data_);
  ::madvise(p, size_, MADV_DONTNEED);  // our page tables; the next touch faults the pages in again
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // the cache's pages nobody else maps
  ::close(fd);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
      region_(std::exchange(o.region_, nullptr)), region_size_(std::exchange(o.region_size_, 0)),
      huge_read_(std::exchange(o.huge_read_, false)), path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (region_) ::munmap(region_, region_size_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    region_ = std::exchange(o.region_, nullptr);
    region_size_ = std::exchange(o.region_size_, 0);
    huge_read_ = std::exchange(o.huge_read_, false);
    path_ = std::move(o.path_);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (region_) ::munmap(region_, region_size_);
}

// ---- Header --------------------------------------------------------------------------------

uint64_t TensorInfo::numel() const {
  // Wrapping is harmless: a validated shape either fits or contains a zero.
  uint64_t n = 1;
  for (int64_t d : shape) n *= uint64_t(d);
  return n;
}

SafetensorsHeader parse_safetensors_header(std::string_view text, uint64_t data_size,
                                           const std::string& file) {
  const json root = parse_json(text, file, "header");
  if (!root.is_object()) fail(file, ": header is a JSON ", root.type_name(), ", not an object");
  SafetensorsHeader h;
  for (const auto& [key, value] : root.items()) {
    if (key != kMetadataKey) {
      h.tensors.push_back(parse_tensor(key, value, data_size, file));
      continue;
    }
    if (value.is_null()) continue;  // the reference implementation accepts null metadata
    if (!value.is_object()) fail(file, ": __metadata__ is a JSON ", value.type_name(), ", not an object");
    for (const auto& [k, v] : value.items()) {
      if (!v.is_string())
        fail(file, ": __metadata__ value for '", k, "' is a JSON ", v.type_name(), ", not a string");
      h.metadata.emplace(k, v.get<std::string>());
    }
  }

  // Zero-sized tensors sort before a non-empty one at the same offset, so they never count as
  // overlapping it; the name breaks remaining ties for a deterministic order.
  std::sort(h.tensors.begin(), h.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  // The format requires the tensors to tile the data section exactly: no overlap, no holes.
  uint64_t at = 0;
  const TensorInfo* prev = nullptr;
  for (const TensorInfo& t : h.tensors) {
    if (t.begin < at)
      tensor_fail(file, t.name, "data offsets [", t.begin, ", ", t.end, ") overlap tensor '",
                  prev->name, "' [", prev->begin, ", ", prev->end, ")");
    if (t.begin > at)
      tensor_fail(file, t.name, "data section bytes [", at, ", ", t.begin,
                  ") before this tensor belong to no tensor");
    at = t.end;
    prev = &t;
  }
  if (at != data_size)
    fail(file, ": data section bytes [", at, ", ", data_size, ") at the end belong to no tensor");
  return h;
}

// ---- SafetensorsFile -----------------------------------------------------------------------

SafetensorsFile SafetensorsFile::open(const std::string& path, WeightMemory memory,
                                      const std::function<bool(const std::string&)>& skip) {
  if (memory == WeightMemory::HugePages && skip) {
    // Read the header from a mapping, then only the bytes of the tensors wanted here.
    const SafetensorsFile mapped = open(path, WeightMemory::Map);
    const uint64_t data0 = uint64_t(mapped.data_section_ - mapped.map_.data());
    ByteRanges ranges{{0, data0}};
    for (const TensorInfo& t : mapped.header_.tensors) {  // sorted by offset
      if (skip(t.name) || t.begin == t.end) continue;
      if (ranges.back().second == data0 + t.begin) ranges.back().second = data0 + t.end;
      else ranges.emplace_back(data0 + t.begin, data0 + t.end);
    }
    SafetensorsFile f;
    f.map_ = MappedFile::open(path, memory, &ranges);
    f.header_ = mapped.header_;
    f.data_section_ = f.map_.data() + data0;
    f.by_name_ = mapped.by_name_;
    return f;
  }
  SafetensorsFile f;
  f.map_ = MappedFile::open(path, memory);
  const uint64_t size = f.map_.size();
  if (size < 8) fail(path, ": file is ", size, " bytes, too short for a safetensors header");
  const uint8_t* p = f.map_.data();
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(p[i]) << (8 * i);
  if (n > size - 8)
    fail(path, ": header length ", n, " exceeds the ", size - 8, " bytes after the length field");
  f.header_ = parse_safetensors_header({reinterpret_cast<const char*>(p + 8), n}, size - 8 - n, path);
  f.data_section_ = p + 8 + n;
  for (size_t i = 0; i < f.header_.tensors.size(); ++i)
    f.by_name_.emplace(f.header_.tensors[i].name, i);  // unique: duplicate keys were rejected
  return f;
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &header_.tensors[it->second];
}

// ---- Checkpoint ----------------------------------------------------------------------------

Checkpoint Checkpoint::open(const std::string& path, WeightMemory memory,
                            const std::function<bool(const std::string&)>& skip) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail(path, ": ", ec ? ec.message() : "no such file or directory");

  std::vector<std::string> shard_paths;
  std::optional<std::map<std::string, std::string>> index;
  const std::string index_path = (fs::path(path) / kIndexName).string();
  if (!fs::is_directory(st)) {
    shard_paths.push_back(path);
  } else if (fs::exists(index_path, ec)) {
    index = read_index(index_path);
    std::set<std::string> shards;
    for (const auto& [name, shard] : *index) shards.insert(shard);
    for (const std::string& s : shards) shard_paths.push_back((fs::path(path) / s).string());
  } else {
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code file_ec;
      if (it->path().extension() == ".safetensors" && it->is_regular_file(file_ec))
        shard_paths.push_back(it->path().string());
    }
    if (ec) fail(path, ": cannot list folder: ", ec.message());
    if (shard_paths.empty()) fail("no .safetensors files in ", path);
    std::sort(shard_paths.begin(), shard_paths.end());
  }

  Checkpoint c;
  c.files_.reserve(shard_paths.size());
  for (const std::string& p : shard_paths) c.files_.push_back(SafetensorsFile::open(p, memory, skip));
  // Pointers are taken only now that files_ is complete; they survive moves of the Checkpoint
  // because the vector's buffer, the header vectors and the mappings all move by pointer.
  for (const SafetensorsFile& f : c.files_) {
    for (const TensorInfo& t : f.tensors()) {
      const auto [it, inserted] = c.tensors_.try_emplace(t.name, TensorRef{&t, f.data(t), &f.path()});
      if (!inserted) fail("tensor '", t.name, "' is in both ", *it->second.file, " and ", f.path());
    }
  }
  if (!index) return c;

  for (const auto& [name, shard] : *index) {
    const std::string shard_path = (fs::path(path) / shard).string();
    const auto it = c.tensors_.find(name);
    if (it == c.tensors_.end())
      fail(index_path, ": tensor '", name, "' is not in its shard ", shard_path);
    if (*it->second.file != shard_path)
      fail(index_path, ": tensor '", name, "' is listed in ", shard_path, " but lives in ", *it->second.file);
  }
  for (const auto& [name, ref] : c.tensors_)
    if (!index->count(name))
      fail(index_path, ": tensor '", name, "' of shard ", *ref.file, " is not listed in the index");
  return c;
}

const TensorRef* Checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, ref] : tensors_) out.push_back(name);
  return out;
}

void Checkpoint::prefault(const std::function<void(uint64_t, uint64_t)>& progress,
                          const std::function<bool(const std::string&)>& skip) const {
  uint64_t total = 0;
  for (const SafetensorsFile& f : files_)
    for (const TensorInfo& t : f.tensors())
      if (!skip || !skip(t.name)) total += t.nbytes();
  uint64_t done = 0;
  volatile uint8_t sink = 0;
  for (const SafetensorsFile& f : files_) {
    for (const TensorInfo& t : f.tensors()) {
      if (skip && skip(t.name)) continue;
      const uint8_t* p = f.data(t);
      for (uint64_t o = 0; o < t.nbytes(); o += 4096) sink = sink + p[o];
      done += t.nbytes();
      if (progress) progress(done, total);
    }
  }
}

double Checkpoint::huge_mapped_fraction(const std::function<bool(const std::string&)>& skip) const {
  uint64_t huge = 0, total = 0;
  for (const SafetensorsFile& f : files_) {
    huge += f.mapping().huge_mapped_bytes();
    if (!skip) total += f.mapping().size();
    else
      for (const TensorInfo& t : f.tensors()) total += skip(t.name) ? 0 : t.end - t.begin;
  }
  return total ? std::min(1.0, double(huge) / double(total)) : 0.0;
}

uint64_t Checkpoint::resident_bytes() const {
  uint64_t n = 0;
  for (const SafetensorsFile& f : files_) n += f.mapping().resident_bytes();
  return n;
}

void Checkpoint::drop_cached_pages() const {
  for (const SafetensorsFile& f : files_) f.mapping().drop_cached_pages();
}

uint64_t Checkpoint::total_bytes() const {
  uint64_t n = 0;
  for (const auto& [name, ref] : tensors_) n += ref.info->nbytes();
  return n;
}

// ---- Writing -------------------------------------------------------------------------------

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, Filler fill) {
  if (name == kMetadataKey) fail("safetensors writer: '", name, "' is reserved and cannot name a tensor");
  if (names_.count(name)) fail("safetensors writer: duplicate tensor '", name, "'");
  for (int64_t d : shape)
    if (d < 0) fail("safetensors writer: tensor '", name, "': negative dimension in shape ", shape_str(shape));
  const auto nbytes = byte_size(dtype, shape);
  if (!nbytes)
    fail("safetensors writer: tensor '", name, "': shape ", shape_str(shape), " of ", dtype_name(dtype),
         " overflows a 64-bit byte count");
  if (!fill) fail("safetensors writer: tensor '", name, "': no filler");
  names_.insert(name);
  entries_.push_back({name, dtype, std::move(shape), *nbytes, std::move(fill)});
}

void SafetensorsWriter::add_bytes(const std::string& name, DType dtype, std::vector<int64_t> shape,
                                  const void* bytes, uint64_t nbytes) {
  for (int64_t d : shape)
    if (d < 0) fail("safetensors writer: tensor '", name, "': negative dimension in shape ", shape_str(shape));
  const auto expected = byte_size(dtype, shape);
  if (expected && *expected != nbytes)
    fail("safetensors writer: tensor '", name, "': ", nbytes, " bytes given but shape ", shape_str(shape),
         " of ", dtype_name(dtype), " needs ", *expected);
  const auto* b = static_cast<const uint8_t*>(bytes);
  auto copy = std::make_shared<const std::vector<uint8_t>>(b, b + (expected ? nbytes : 0));
  add(name, dtype, std::move(shape), [copy](uint8_t* dst, uint64_t n) {
    if (n) std::memcpy(dst, copy->data(), n);
  });
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t n = 0;
  for (const Entry& e : entries_) n += e.nbytes;
  return n;
}

void SafetensorsWriter::write(const std::string& path) const {
  json header = json::object();
  if (!metadata_.empty()) header[kMetadataKey] = metadata_;
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    uint64_t end;
    if (__builtin_add_overflow(offset, e.nbytes, &end)) fail(path, ": data section overflows 64 bits");
    json& j = header[e.name];
    j["dtype"] = dtype_name(e.dtype);
    j["shape"] = e.shape;
    j["data_offsets"] = json::array({offset, end});
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& ex) {  // e.g. a name that is not valid UTF-8
    fail(path, ": cannot encode header: ", ex.what());
  }
  // Space padding (as the reference writer does) puts the data section on an 8-byte boundary,
  // so mapped tensors of every dtype are naturally aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  write_atomically(path, [&](int fd, const std::string& tmp) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, reinterpret_cast<const uint8_t*>(text.data()), text.size(), tmp);
    std::vector<uint8_t> buf;  // one tensor at a time; zeroed so a lazy filler writes no garbage
    for (const Entry& e : entries_) {
      buf.assign(e.nbytes, 0);
      e.fill(buf.data(), e.nbytes);
      write_all(fd, buf.data(), e.nbytes, tmp);
    }
  });
}

void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  json root = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  std::string text;
  try {
    text = root.dump(2) + "\n";
  } catch (const json::exception& ex) {
    fail(path, ": cannot encode index: ", ex.what());
  }
  write_atomically(path, [&](int fd, const std::string& tmp) {
    write_all(fd, reinterpret_cast<const uint8_t*>(text.data()), text.size(), tmp);
  });
}

}  // namespace dsv3::io
