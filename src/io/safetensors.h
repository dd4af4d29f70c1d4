// Safetensors reading (zero-copy over mmap) and writing (streamed, one tensor at a time).
//
// File layout: u64 little-endian header length N, N bytes of JSON, then the data section.
// Every number read from a header goes through checked 64-bit arithmetic; any inconsistency
// (bad JSON, unknown dtype, shape/byte-size mismatch, offsets out of range or overlapping,
// header length beyond the file) throws dsv3::Error naming the file and the tensor.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "io/dtype.h"

namespace dsv3::io {

//! Where a checkpoint's bytes live in memory.
enum class WeightMemory {
  //! A read-only private mapping of the file (zero-copy; pages are shared with the page
  //! cache and faulted in on first touch).
  Map,
  //! The file read into anonymous memory advised for 2 MB transparent huge pages. Loading
  //! reads the whole file and needs that much free memory, but decode then takes far
  //! fewer TLB misses: 4 KB file pages cost a page walk per 4 KB of weights read.
  HugePages,
};

//! Byte ranges [begin, end) of a file.
using ByteRanges = std::vector<std::pair<uint64_t, uint64_t>>;

//! A whole file in memory, read-only (see WeightMemory). Move-only; unmaps on destruction.
class MappedFile {
 public:
  //! Throws dsv3::Error (with the path and errno text) if the file cannot be opened, mapped
  //! or read.
  //! HugePages with `only`: just those byte ranges are read; the rest of the file reads as
  //! zeros and takes no memory (an expert-parallel rank reads its own experts).
  static MappedFile open(const std::string& path, WeightMemory memory = WeightMemory::Map,
                         const ByteRanges* only = nullptr);
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  //! Bytes of the file this process has mapped in 2 MB pages (the huge pages themselves, or
  //! page-cache folios mapped whole), from /proc/self/smaps; 0 where that is unreadable.
  uint64_t huge_mapped_bytes() const;
  //! Bytes of the file resident in this process's memory (mapped page-cache pages or the
  //! pages read), from /proc/self/smaps; 0 where that is unreadable.
  uint64_t resident_bytes() const;
  //! Map mode: drops this mapping's pages and the file's page-cache pages that no other
  //! process maps, so the next reads come back from the file in 2 MB folios (the mapping is
  //! advised for huge pages). The data stays where it was; only page tables and the cache
  //! change. A no-op for huge-page memory.
  void drop_cached_pages() const;

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  void* region_ = nullptr;  // what to unmap: the mapping (HugePages: aligned inside it)
  uint64_t region_size_ = 0;
  bool huge_read_ = false;  // read into anonymous huge pages, not mapped
  std::string path_;
};

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets relative to the start of the data section
  uint64_t end = 0;

  uint64_t numel() const;  // product of shape (1 for a scalar)
  uint64_t nbytes() const { return end - begin; }
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;                 // sorted by begin offset
  std::map<std::string, std::string> metadata;     // "__metadata__" (string values only)
};

//! Parses and validates a header's JSON against a data section of data_size bytes.
//! `file` is used only in error messages. This is the libFuzzer entry point.
SafetensorsHeader parse_safetensors_header(std::string_view json, uint64_t data_size,
                                           const std::string& file);

//! One mapped .safetensors file.
class SafetensorsFile {
 public:
  //! Maps and validates the file. Throws dsv3::Error naming the file (and tensor).
  //! HugePages with `skip`: the tensors for which skip(name) holds are not read (their
  //! bytes read as zeros and take no memory).
  static SafetensorsFile open(const std::string& path, WeightMemory memory = WeightMemory::Map,
                              const std::function<bool(const std::string&)>& skip = nullptr);

  const std::string& path() const { return map_.path(); }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  //! nullptr when absent.
  const TensorInfo* find(std::string_view name) const;
  //! Pointer to the tensor's first byte inside the mapping (valid while this object lives).
  const uint8_t* data(const TensorInfo& t) const { return data_section_ + t.begin; }
  const MappedFile& mapping() const { return map_; }

 private:
  MappedFile map_;
  SafetensorsHeader header_;
  const uint8_t* data_section_ = nullptr;
  std::map<std::string, size_t, std::less<>> by_name_;
};

//! A tensor found in a checkpoint: where it lives and what it is.
struct TensorRef {
  const TensorInfo* info = nullptr;
  const uint8_t* data = nullptr;
  const std::string* file = nullptr;  // path of the shard holding it
};

//! A checkpoint folder: `model.safetensors.index.json` (weight_map name -> shard), or else
//! every `*.safetensors` file in the folder; or a single .safetensors path. Tensor names must
//! be unique across shards; the index must agree with the shards' headers.
class Checkpoint {
 public:
  //! `skip` as SafetensorsFile::open (HugePages only; mapped files are read on first touch).
  static Checkpoint open(const std::string& path, WeightMemory memory = WeightMemory::Map,
                         const std::function<bool(const std::string&)>& skip = nullptr);

  //! nullptr when absent.
  const TensorRef* find(std::string_view name) const;
  //! All tensor names, sorted.
  std::vector<std::string> names() const;
  const std::vector<SafetensorsFile>& files() const { return files_; }
  //! Total bytes of tensor data over all shards.
  uint64_t total_bytes() const;
  //! Reads one byte of every page of tensor data so later reads hit memory, not page faults.
  //! progress(done_bytes, total_bytes) is called after each tensor when given. Tensors for
  //! which skip(name) holds are not touched (nor counted).
  void prefault(const std::function<void(uint64_t, uint64_t)>& progress = nullptr,
                const std::function<bool(const std::string&)>& skip = nullptr) const;
  //! The share of the shards' bytes mapped in 2 MB pages (after prefault): decode reads
  //! the weights with far fewer TLB misses when it is near 1.
  //! With `skip`: of the bytes of the tensors it does not skip (those prefault touches).
  double huge_mapped_fraction(const std::function<bool(const std::string&)>& skip = nullptr) const;
  //! MappedFile::resident_bytes over every shard: the weight memory this process holds.
  uint64_t resident_bytes() const;
  //! MappedFile::drop_cached_pages for every shard: after it, prefault reads the weights
  //! again into 2 MB page-cache folios (`--recache`).
  void drop_cached_pages() const;

 private:
  std::vector<SafetensorsFile> files_;
  std::map<std::string, TensorRef, std::less<>> tensors_;
};

//! Streams a safetensors file: declare every tensor, then write() lays out the header and
//! asks each tensor's filler for its bytes in turn, so a multi-GB shard never sits in memory.
class SafetensorsWriter {
 public:
  using Filler = std::function<void(uint8_t* dst, uint64_t nbytes)>;

  //! Declares a tensor; its bytes come from `fill` at write() time. Throws on a duplicate name.
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, Filler fill);
  //! Convenience: a tensor whose bytes are already in memory (copied).
  void add_bytes(const std::string& name, DType dtype, std::vector<int64_t> shape,
                 const void* bytes, uint64_t nbytes);
  void set_metadata(const std::string& key, const std::string& value);
  //! Writes to `path` + ".tmp" and renames, so a crash never leaves a half-written file.
  void write(const std::string& path) const;

  //! Sum of the declared tensors' bytes.
  uint64_t data_bytes() const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    uint64_t nbytes;
    Filler fill;
  };
  std::vector<Entry> entries_;
  std::set<std::string, std::less<>> names_;  // duplicate check without an O(n^2) scan
  std::map<std::string, std::string> metadata_;
};

//! Writes `model.safetensors.index.json` for the given name -> shard-file-name map.
void write_safetensors_index(const std::string& path, const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size);

}  // namespace dsv3::io
