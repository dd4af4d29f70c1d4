#include "io/safetensors.h"
#include "test_util.h"

#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/error.h"

namespace dsv3 {
namespace {

namespace fs = std::filesystem;

// Each test gets its own folder so parallel ctest runs never collide.
class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           ("dsv3_st_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A file with an arbitrary length field, header text and `data_size` bytes of data.
  std::string write_raw(const std::string& name, uint64_t header_len, const std::string& header,
                        uint64_t data_size = 0) const {
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[i] = char(uint8_t(header_len >> (8 * i)));
    bytes += header;
    bytes.append(data_size, '\x5a');
    return write_bytes(name, bytes);
  }
  std::string write_header(const std::string& name, const std::string& header, uint64_t data_size = 0) const {
    return write_raw(name, header.size(), header, data_size);
  }
  std::string write_bytes(const std::string& name, const std::string& bytes) const {
    const std::string p = path(name);
    std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
    return p;
  }

  // Writes a small shard holding F32 tensors of two elements each, filled with `seed`.
  std::string write_shard(const std::string& name, const std::vector<std::string>& tensors, float seed = 1) {
    io::SafetensorsWriter w;
    for (const std::string& t : tensors) {
      const float v[2] = {seed, seed + 1};
      w.add_bytes(t, io::DType::F32, {2}, v, sizeof v);
    }
    w.write(path(name));
    return path(name);
  }

  fs::path dir_;
};

using testutil::error_of;

#define EXPECT_MSG_HAS(msg, needle) \
  EXPECT_NE((msg).find(needle), std::string::npos) << "message: " << (msg) << "\nmissing: " << (needle)

constexpr io::DType kAllDtypes[] = {io::DType::F64,     io::DType::F32, io::DType::F16, io::DType::BF16, io::DType::F8_E4M3, io::DType::F8_E5M2,
                                io::DType::F8_E8M0, io::DType::I64, io::DType::I32, io::DType::I16,  io::DType::I8,      io::DType::U64,
                                io::DType::U32,     io::DType::U16, io::DType::U8,  io::DType::BOOL};

TEST_F(SafetensorsTest, RoundTripAllDtypesScalarsEmptyAndMetadata) {
  io::SafetensorsWriter w;
  std::vector<std::vector<uint8_t>> payloads;
  for (io::DType t : kAllDtypes) {
    std::vector<uint8_t> bytes(2 * 3 * io::dtype_size(t));
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = uint8_t(i * 7 + uint8_t(t));
    w.add_bytes(std::string("t.") + io::dtype_name(t), t, {2, 3}, bytes.data(), bytes.size());
    payloads.push_back(bytes);
  }
  const double scalar = 3.25;
  w.add_bytes("scalar", io::DType::F64, {}, &scalar, sizeof scalar);
  w.add_bytes("empty.a", io::DType::BF16, {0, 5}, nullptr, 0);
  w.add("empty.b", io::DType::F32, {3, 0, 7}, [](uint8_t*, uint64_t n) { EXPECT_EQ(n, 0u); });
  w.add("odd", io::DType::U8, {3}, [](uint8_t* dst, uint64_t n) {
    ASSERT_EQ(n, 3u);
    std::memcpy(dst, "abc", 3);
  });
  w.set_metadata("format", "pt");
  w.set_metadata("note", "quotes \" and \xc3\xa9");
  EXPECT_EQ(w.size(), 20u);
  const std::string p = path("all.safetensors");
  w.write(p);
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  const io::SafetensorsFile f = io::SafetensorsFile::open(p);
  EXPECT_EQ(f.path(), p);
  ASSERT_EQ(f.tensors().size(), 20u);
  uint64_t total = 0;
  for (const io::TensorInfo& t : f.tensors()) total += t.nbytes();
  EXPECT_EQ(total, w.data_bytes());
  // The mapping is page aligned, so this checks the writer's header padding.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.data(f.tensors().front())) % 8, 0u);

  for (size_t i = 0; i < std::size(kAllDtypes); ++i) {
    const io::DType dt = kAllDtypes[i];
    const io::TensorInfo* t = f.find(std::string("t.") + io::dtype_name(dt));
    ASSERT_NE(t, nullptr) << io::dtype_name(dt);
    EXPECT_EQ(t->dtype, dt);
    EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t->numel(), 6u);
    ASSERT_EQ(t->nbytes(), payloads[i].size());
    EXPECT_EQ(std::memcmp(f.data(*t), payloads[i].data(), t->nbytes()), 0) << io::dtype_name(dt);
  }
  const io::TensorInfo* s = f.find("scalar");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->numel(), 1u);
  double got;
  std::memcpy(&got, f.data(*s), sizeof got);
  EXPECT_EQ(got, scalar);
  for (const char* name : {"empty.a", "empty.b"}) {
    const io::TensorInfo* e = f.find(name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->numel(), 0u);
    EXPECT_EQ(e->nbytes(), 0u);
  }
  EXPECT_EQ(f.find("empty.b")->shape, (std::vector<int64_t>{3, 0, 7}));
  EXPECT_EQ(std::memcmp(f.data(*f.find("odd")), "abc", 3), 0);
  EXPECT_EQ(f.find("missing"), nullptr);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "quotes \" and \xc3\xa9");

  // Declaration order is file order, and tensors() is sorted by offset.
  for (size_t i = 1; i < f.tensors().size(); ++i) EXPECT_LE(f.tensors()[i - 1].end, f.tensors()[i].begin);
  EXPECT_EQ(f.tensors().front().name, "t.F64");
}

// An expert-parallel rank reads only its tensors into memory: the others read as zeros.
TEST_F(SafetensorsTest, HugePagesWithSkipReadOnlyTheWantedTensors) {
  io::SafetensorsWriter w;
  std::vector<float> a(100000, 1.5f), b(70000, -2.0f), c(3, 7.0f);
  w.add_bytes("a", io::DType::F32, {int64_t(a.size())}, a.data(), a.size() * 4);
  w.add_bytes("b", io::DType::F32, {int64_t(b.size())}, b.data(), b.size() * 4);
  w.add_bytes("c", io::DType::F32, {3}, c.data(), 12);
  w.write(path("some.safetensors"));
  const io::Checkpoint ck = io::Checkpoint::open(path("some.safetensors"), io::WeightMemory::HugePages,
                                                 [](const std::string& name) { return name == "b"; });
  ASSERT_EQ(ck.names(), (std::vector<std::string>{"a", "b", "c"}));
  auto floats = [&](const char* name) {
    const io::TensorRef* t = ck.find(name);
    std::vector<float> v(t->info->numel());
    std::memcpy(v.data(), t->data, t->info->nbytes());
    return v;
  };
  EXPECT_EQ(floats("a"), a);
  EXPECT_EQ(floats("c"), c);
  EXPECT_EQ(floats("b"), std::vector<float>(b.size(), 0.0f)) << "a skipped tensor is never read";
}

TEST_F(SafetensorsTest, EmptyWriterMakesAValidFile) {
  io::SafetensorsWriter w;
  w.write(path("none.safetensors"));
  const io::SafetensorsFile f = io::SafetensorsFile::open(path("none.safetensors"));
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST_F(SafetensorsTest, WriterRejectsBadDeclarations) {
  io::SafetensorsWriter w;
  const float v[2] = {1, 2};
  w.add_bytes("a", io::DType::F32, {2}, v, sizeof v);
  EXPECT_MSG_HAS(error_of([&] { w.add_bytes("a", io::DType::F32, {2}, v, sizeof v); }), "duplicate tensor 'a'");
  EXPECT_MSG_HAS(error_of([&] { w.add_bytes("b", io::DType::F32, {3}, v, sizeof v); }), "'b'");
  EXPECT_MSG_HAS(error_of([&] { w.add_bytes("c", io::DType::F32, {-1, 2}, v, sizeof v); }), "negative");
  EXPECT_MSG_HAS(error_of([&] { w.add("d", io::DType::F32, {int64_t(1) << 62}, [](uint8_t*, uint64_t) {}); }),
                 "overflow");
  EXPECT_MSG_HAS(error_of([&] { w.add("__metadata__", io::DType::U8, {}, [](uint8_t*, uint64_t) {}); }), "reserved");
  EXPECT_MSG_HAS(error_of([&] { w.add("e", io::DType::U8, {1}, nullptr); }), "'e'");
  EXPECT_EQ(w.size(), 1u);
}

TEST_F(SafetensorsTest, FailingFillerLeavesNoFile) {
  io::SafetensorsWriter w;
  w.add("boom", io::DType::U8, {4}, [](uint8_t*, uint64_t) { fail("filler failed"); });
  const std::string p = path("boom.safetensors");
  EXPECT_MSG_HAS(error_of([&] { w.write(p); }), "filler failed");
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
}

TEST_F(SafetensorsTest, HeaderMismatchMessageIsExact) {
  const std::string h = R"({"x.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,12]}})";
  EXPECT_EQ(error_of([&] { io::parse_safetensors_header(h, 12, "model-00001.safetensors"); }),
            "model-00001.safetensors: tensor 'x.weight': data offsets [0, 12) do not match shape [2, 3] "
            "of F32 (24 bytes)");
}

TEST_F(SafetensorsTest, HeaderSortsByOffsetAndAllowsStackedEmptyTensors) {
  const std::string h = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},
                            "b":{"dtype":"I32","shape":[],"data_offsets":[0,4]},
                            "c":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},
                            "d":{"dtype":"F32","shape":[0,9],"data_offsets":[6,6]},
                            "__metadata__":null})";
  const io::SafetensorsHeader hdr = io::parse_safetensors_header(h, 6, "mem");
  ASSERT_EQ(hdr.tensors.size(), 4u);
  EXPECT_EQ(hdr.tensors[0].name, "b");
  EXPECT_EQ(hdr.tensors[1].name, "c");
  EXPECT_EQ(hdr.tensors[2].name, "a");
  EXPECT_EQ(hdr.tensors[3].name, "d");
  EXPECT_TRUE(hdr.metadata.empty());
}

TEST_F(SafetensorsTest, ZeroDimAvoidsOverflowOfOtherDims) {
  const std::string h = R"({"z":{"dtype":"F64","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})";
  EXPECT_EQ(io::parse_safetensors_header(h, 0, "mem").tensors.at(0).numel(), 0u);
}

struct BadHeader {
  const char* label;
  std::string header;
  uint64_t data_size;
  std::vector<std::string> needles;  // beyond the file name, which every message must carry
};

TEST_F(SafetensorsTest, HostileHeadersAreRejectedWithFileAndTensor) {
  const std::string ok_x = R"("x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::vector<BadHeader> cases = {
      {"not json", "{not json", 0, {"not valid JSON"}},
      {"empty header", "", 0, {"not valid JSON"}},
      {"trailing garbage", "{} x", 0, {"not valid JSON"}},
      {"invalid utf8", "{\"\xff\":1}", 0, {"not valid JSON"}},
      {"array root", "[1,2]", 0, {"array, not an object"}},
      {"string root", "\"hi\"", 0, {"not an object"}},
      {"entry not object", R"({"x":5})", 0, {"'x'", "not an object"}},
      {"missing dtype", R"({"x":{"shape":[2],"data_offsets":[0,8]}})", 8, {"'x'", "missing \"dtype\""}},
      {"missing shape", R"({"x":{"dtype":"F32","data_offsets":[0,8]}})", 8, {"'x'", "missing \"shape\""}},
      {"missing offsets", R"({"x":{"dtype":"F32","shape":[2]}})", 8, {"'x'", "missing \"data_offsets\""}},
      {"dtype not string", R"({"x":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", 8, {"'x'", "dtype"}},
      {"unknown dtype", R"({"x":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})", 8, {"'x'", "unknown dtype 'F128'"}},
      {"shape not array", R"({"x":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8, {"'x'", "\"shape\""}},
      {"negative dim", R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8, {"'x'", "negative"}},
      {"float dim", R"({"x":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8, {"'x'", "not an integer"}},
      {"dim beyond int64", R"({"x":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,8]}})", 8,
       {"'x'", "too large"}},
      {"numel overflow", R"({"x":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8,
       {"'x'", "overflows"}},
      {"bytes overflow", R"({"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", 8,
       {"'x'", "overflows"}},
      {"offsets one value", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8, {"'x'", "data_offsets"}},
      {"offsets negative", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8, {"'x'", "data_offsets"}},
      {"offsets float", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}})", 8, {"'x'", "data_offsets"}},
      {"end before begin", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8, {"'x'", "end before"}},
      {"beyond data", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 8, {"'x'", "exceed the data section of 8"}},
      {"huge offsets", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})",
       8, {"'x'", "exceed"}},
      {"size mismatch", R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8, {"'x'", "do not match"}},
      {"overlap", "{" + ok_x + R"(,"y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
       {"'y'", "overlap tensor 'x'"}},
      {"same range twice", "{" + ok_x + R"(,"y":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8,
       {"'y'", "overlap"}},
      {"empty inside another", "{" + ok_x + R"(,"y":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", 8,
       {"'y'", "overlap"}},
      {"hole in middle", "{" + ok_x + R"(,"y":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})", 20,
       {"'y'", "[8, 12)", "belong to no tensor"}},
      {"hole at start", R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, {"'x'", "[0, 4)"}},
      {"hole at end", "{" + ok_x + "}", 16, {"[8, 16)", "belong to no tensor"}},
      {"data without tensors", "{}", 4, {"belong to no tensor"}},
      {"duplicate tensor key", "{" + ok_x + "," + ok_x + "}", 8, {"duplicate key 'x'"}},
      {"duplicate field", R"({"x":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8,
       {"duplicate key 'dtype'"}},
      {"metadata number", "{" + ok_x + R"(,"__metadata__":{"k":1}})", 8, {"__metadata__", "'k'", "not a string"}},
      {"metadata nested", "{" + ok_x + R"(,"__metadata__":{"k":{"a":"b"}}})", 8, {"'k'", "not a string"}},
      {"metadata array", "{" + ok_x + R"(,"__metadata__":["a"]})", 8, {"__metadata__", "not an object"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const BadHeader& c = cases[i];
    SCOPED_TRACE(c.label);
    const std::string name = "bad" + std::to_string(i) + ".safetensors";
    const std::string p = write_header(name, c.header, c.data_size);
    const std::string msg = error_of([&] { io::SafetensorsFile::open(p); });
    EXPECT_MSG_HAS(msg, name);
    for (const std::string& n : c.needles) EXPECT_MSG_HAS(msg, n);
    // The in-memory entry point agrees with the file reader.
    const std::string mem = error_of([&] { io::parse_safetensors_header(c.header, c.data_size, "hdr.json"); });
    EXPECT_MSG_HAS(mem, "hdr.json");
  }
}

TEST_F(SafetensorsTest, TruncatedAndLyingLengthFields) {
  const std::string empty = write_bytes("empty.safetensors", "");
  EXPECT_MSG_HAS(error_of([&] { io::SafetensorsFile::open(empty); }), "empty.safetensors: file is 0 bytes");
  const std::string five = write_bytes("five.safetensors", std::string("\x02\0\0\0\0", 5));
  EXPECT_MSG_HAS(error_of([&] { io::SafetensorsFile::open(five); }), "five.safetensors: file is 5 bytes");

  const std::string longer = write_raw("long.safetensors", 100, "{}", 10);
  std::string msg = error_of([&] { io::SafetensorsFile::open(longer); });
  EXPECT_MSG_HAS(msg, "long.safetensors: header length 100 exceeds the 12 bytes");

  for (uint64_t n : {uint64_t(1) << 63, ~uint64_t(0), ~uint64_t(0) - 7}) {
    const std::string huge = write_raw("huge.safetensors", n, "{}");
    msg = error_of([&] { io::SafetensorsFile::open(huge); });
    EXPECT_MSG_HAS(msg, "huge.safetensors: header length " + std::to_string(n) + " exceeds");
  }

  // A length field that stops short leaves the tail of the JSON as data.
  const std::string shortlen = write_raw("short.safetensors", 1, "{}");
  EXPECT_MSG_HAS(error_of([&] { io::SafetensorsFile::open(shortlen); }), "short.safetensors: header is not valid JSON");
}

TEST_F(SafetensorsTest, MissingAndNonRegularPaths) {
  EXPECT_MSG_HAS(error_of([&] { io::SafetensorsFile::open(path("nope.safetensors")); }), "nope.safetensors: cannot open");
  EXPECT_MSG_HAS(error_of([&] { io::SafetensorsFile::open(dir_.string()); }), "not a regular file");
  EXPECT_MSG_HAS(error_of([&] { io::Checkpoint::open(path("nope")); }), "nope");
}

TEST_F(SafetensorsTest, CheckpointSingleFile) {
  const std::string p = write_shard("one.safetensors", {"b", "a"}, 5);
  const io::Checkpoint c = io::Checkpoint::open(p);
  ASSERT_EQ(c.files().size(), 1u);
  EXPECT_EQ(c.names(), (std::vector<std::string>{"a", "b"}));
  const io::TensorRef* a = c.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(*a->file, p);
  float v[2];
  std::memcpy(v, a->data, sizeof v);
  EXPECT_EQ(v[0], 5.0f);
  EXPECT_EQ(c.total_bytes(), 16u);
  EXPECT_EQ(c.find("zzz"), nullptr);
}

TEST_F(SafetensorsTest, CheckpointShardedWithIndexSurvivesMove) {
  write_shard("model-00002-of-00002.safetensors", {"layers.1.w", "layers.1.b"}, 20);
  write_shard("model-00001-of-00002.safetensors", {"embed", "layers.0.w"}, 10);
  write_shard("stray.safetensors", {"stray"}, 0);  // not in the index, so never opened
  io::write_safetensors_index(path("model.safetensors.index.json"),
                          {{"embed", "model-00001-of-00002.safetensors"},
                           {"layers.0.w", "model-00001-of-00002.safetensors"},
                           {"layers.1.w", "model-00002-of-00002.safetensors"},
                           {"layers.1.b", "model-00002-of-00002.safetensors"}},
                          32);
  EXPECT_FALSE(fs::exists(path("model.safetensors.index.json.tmp")));

  io::Checkpoint opened = io::Checkpoint::open(dir_.string());
  const io::Checkpoint c = std::move(opened);
  ASSERT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.files()[0].path(), path("model-00001-of-00002.safetensors"));
  EXPECT_EQ(c.files()[1].path(), path("model-00002-of-00002.safetensors"));
  EXPECT_EQ(c.names(), (std::vector<std::string>{"embed", "layers.0.w", "layers.1.b", "layers.1.w"}));
  EXPECT_EQ(c.total_bytes(), 32u);
  EXPECT_EQ(c.find("stray"), nullptr);
  const io::TensorRef* r = c.find("layers.1.b");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->file, &c.files()[1].path());
  EXPECT_EQ(r->info, c.files()[1].find("layers.1.b"));
  float v[2];
  std::memcpy(v, r->data, sizeof v);
  EXPECT_EQ(v[1], 21.0f);
}

TEST_F(SafetensorsTest, CheckpointFolderWithoutIndex) {
  write_shard("b.safetensors", {"y"}, 2);
  write_shard("a.safetensors", {"x"}, 1);
  write_bytes("notes.txt", "not a shard");
  fs::create_directory(path("sub.safetensors"));  // a folder with the suffix is no shard
  const io::Checkpoint c = io::Checkpoint::open(dir_.string());
  ASSERT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.files()[0].path(), path("a.safetensors"));
  EXPECT_EQ(*c.find("y")->file, path("b.safetensors"));
  EXPECT_EQ(c.names(), (std::vector<std::string>{"x", "y"}));
}

TEST_F(SafetensorsTest, CheckpointEmptyFolder) {
  write_bytes("readme.md", "hi");
  EXPECT_MSG_HAS(error_of([&] { io::Checkpoint::open(dir_.string()); }), "no .safetensors files in " + dir_.string());
}

TEST_F(SafetensorsTest, CheckpointDuplicateAcrossShards) {
  write_shard("a.safetensors", {"x", "shared"});
  write_shard("b.safetensors", {"shared"});
  const std::string msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
  EXPECT_MSG_HAS(msg, "'shared'");
  EXPECT_MSG_HAS(msg, path("a.safetensors"));
  EXPECT_MSG_HAS(msg, path("b.safetensors"));
}

TEST_F(SafetensorsTest, CheckpointBadShardInFolderNamesIt) {
  write_shard("a.safetensors", {"x"});
  write_bytes("b.safetensors", "junk");
  EXPECT_MSG_HAS(error_of([&] { io::Checkpoint::open(dir_.string()); }), "b.safetensors: file is 4 bytes");
}

TEST_F(SafetensorsTest, IndexDisagreements) {
  const std::string index = path("model.safetensors.index.json");
  write_shard("s1.safetensors", {"a", "b"});
  write_shard("s2.safetensors", {"c"});

  io::write_safetensors_index(index, {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "gone.safetensors"}}, 0);
  std::string msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
  EXPECT_MSG_HAS(msg, "gone.safetensors");
  EXPECT_MSG_HAS(msg, "cannot open");

  io::write_safetensors_index(index, {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}, {"c", "s2.safetensors"},
                                  {"ghost", "s2.safetensors"}}, 0);
  msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
  EXPECT_MSG_HAS(msg, "model.safetensors.index.json: tensor 'ghost' is not in its shard");
  EXPECT_MSG_HAS(msg, "s2.safetensors");

  io::write_safetensors_index(index, {{"a", "s1.safetensors"}, {"c", "s2.safetensors"}}, 0);
  msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
  EXPECT_MSG_HAS(msg, "tensor 'b' of shard " + path("s1.safetensors") + " is not listed in the index");

  io::write_safetensors_index(index, {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}, {"c", "s2.safetensors"}}, 0);
  msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
  EXPECT_MSG_HAS(msg, "tensor 'b' is listed in " + path("s2.safetensors") + " but lives in " + path("s1.safetensors"));

  io::write_safetensors_index(index, {{"a", "../s1.safetensors"}}, 0);
  EXPECT_MSG_HAS(error_of([&] { io::Checkpoint::open(dir_.string()); }), "not a file in the folder");
}

TEST_F(SafetensorsTest, MalformedIndexFiles) {
  write_shard("s1.safetensors", {"a"});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "not valid JSON"},
      {"[]", "not an object"},
      {R"({"metadata":{}})", "missing \"weight_map\""},
      {R"({"weight_map":[]})", "missing \"weight_map\""},
      {R"({"weight_map":{"a":1}})", "'a' is not a string"},
      {R"({"weight_map":{"a":"s1.safetensors","a":"s1.safetensors"}})", "duplicate key 'a'"},
  };
  for (const auto& [text, needle] : cases) {
    SCOPED_TRACE(text);
    write_bytes("model.safetensors.index.json", text);
    const std::string msg = error_of([&] { io::Checkpoint::open(dir_.string()); });
    EXPECT_MSG_HAS(msg, "model.safetensors.index.json");
    EXPECT_MSG_HAS(msg, needle);
  }
}

}  // namespace
}  // namespace dsv3
