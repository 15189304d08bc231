// safetensors I/O and layers/weights: round trips, a hand-made file laid out as the reference
// implementation writes it, and rejection of truncated, corrupt and mismatched files with the
// file and the tensor named in the message.
#include <doctest/doctest.h>

#include "test_support.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include "layers/weights.h"
#include "tensor/file_io.h"
#include "tensor/safetensors.h"

using namespace sm;

namespace {

std::string temp_path(const std::string& name) {
  static test::TempDir dir("safetensors");
  return dir.file(name);
}

// A file built from a header string and raw data bytes, exactly as the spec lays it out.
std::string file_make(std::string header, const std::string& data, bool pad = true) {
  if (pad) header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  std::string out(8, '\0');
  std::memcpy(&out[0], &n, 8);
  return out + header + data;
}

template <class T> std::string bytes_of(std::initializer_list<T> v) {
  std::string s(v.size() * sizeof(T), '\0');
  size_t i = 0;
  for (T x : v) std::memcpy(&s[sizeof(T) * i++], &x, sizeof(T));
  return s;
}

void check_rejects(const std::string& bytes, const std::vector<std::string>& needles) {
  try {
    safetensors_parse(bytes, "bad.safetensors");
    FAIL("accepted a bad file");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK_MESSAGE(msg.find("bad.safetensors") != std::string::npos, msg);
    for (const auto& n : needles) CHECK_MESSAGE(msg.find(n) != std::string::npos, "missing '" << n << "' in: " << msg);
  }
}

struct TinyBn : Module {
  TinyBn() {
    buffer_add("running_mean", Tensor::zeros({2}));
    buffer_add("num_batches_tracked", Tensor::zeros({}));
  }
  Var forward(const Var& x) override { return x; }
  std::string type_name() const override { return "TinyBn"; }
};

struct TinyNet : Module {
  explicit TinyNet(int64_t out = 2) {
    w = parameter_add("weight", Tensor::from_vector({out, 3}, std::vector<float>(size_t(out) * 3, 1.5f)));
    module_add("bn1", std::make_shared<TinyBn>());
  }
  Var forward(const Var& x) override { return x; }
  std::string type_name() const override { return "TinyNet"; }
  Var w;
};

}  // namespace

TEST_CASE("round trip F32 and F64 with metadata; 8-byte dtypes first; header padded to 8") {
  Tensor a = Tensor::from_vector({2, 3}, std::vector<float>{1, 2, 3, 4, 5, -6.5f});
  Tensor b = Tensor::from_vector({3}, std::vector<double>{0.1, -1e300, 3.0});
  Tensor s = Tensor::scalar(42.0);
  std::string path = temp_path("rt.safetensors");
  safetensors_write(path, {{"a.weight", a}, {"b", b}, {"s", s}}, {{"format", "pt"}, {"note", "héllo"}});
  std::string bytes = file_read_all(path);
  uint64_t n;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 24 + 24 + 4);

  SafeTensorsFile f = safetensors_read(path);
  REQUIRE(f.tensors.size() == 3);
  CHECK(f.tensors[0].first == "b");  // F64 first (alignment), then the caller's order
  CHECK(f.tensors[1].first == "a.weight");
  CHECK(f.tensors[2].first == "s");
  CHECK(f.find("b")->dtype() == DType::F64);
  CHECK(f.find("b")->to_vector_f64() == b.to_vector_f64());
  CHECK(f.find("a.weight")->shape() == Shape{2, 3});
  CHECK(f.find("a.weight")->to_vector_f32() == a.to_vector_f32());
  CHECK(f.find("s")->dim() == 0);
  CHECK(f.find("s")->item() == 42.0);
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("note") == "héllo");
  CHECK(f.file_dtypes.at("a.weight") == "F32");
  CHECK(f.find("nope") == nullptr);
  CHECK(safetensors_serialize({{"a.weight", a}, {"b", b}, {"s", s}}, {{"format", "pt"}, {"note", "héllo"}}) == bytes);
}

TEST_CASE("I64 output for num_batches_tracked, read back as F32") {
  SafeTensorsWriteOptions o;
  o.i64_name_suffixes = {"num_batches_tracked"};
  std::string bytes = safetensors_serialize({{"w", Tensor::full({3}, 0.5)}, {"bn1.num_batches_tracked", Tensor::scalar(7.0)}}, {}, o);
  CHECK(bytes.find("\"bn1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}") != std::string::npos);
  SafeTensorsFile f = safetensors_parse(bytes, "mem");
  CHECK(f.file_dtypes.at("bn1.num_batches_tracked") == "I64");
  CHECK(f.find("bn1.num_batches_tracked")->dtype() == DType::F32);
  CHECK(f.find("bn1.num_batches_tracked")->item() == 7.0);
  CHECK_THROWS_WITH_AS(safetensors_serialize({{"bn.num_batches_tracked", Tensor::scalar(1.5)}}, {}, o),
                       doctest::Contains("bn.num_batches_tracked"), Error);
}

TEST_CASE("a file laid out as the reference writes it (I64, F32, F16, BF16, I32, U8)") {
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"bn1.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
      "\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[1,2],\"data_offsets\":[8,16]},"
      "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[16,24]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
      "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[32,34]},"
      "\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[34,36]}}";
  std::string data = bytes_of<int64_t>({123}) + bytes_of<float>({0.25f, -3.0f}) + bytes_of<int32_t>({-5, 9}) +
                     bytes_of<uint16_t>({0x3c00, 0xc000, 0x7bff, 0x0001}) + bytes_of<uint16_t>({0x3f80}) +
                     bytes_of<uint8_t>({200, 1});
  SafeTensorsFile f = safetensors_parse(file_make(header, data), "ref.safetensors");
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.tensors.size() == 6);
  CHECK(f.tensors[0].first == "bn1.num_batches_tracked");  // data order
  CHECK(f.find("bn1.num_batches_tracked")->item() == 123.0);
  CHECK(f.find("conv1.weight")->to_vector_f32() == std::vector<float>{0.25f, -3.0f});
  CHECK(f.find("i")->to_vector_f32() == std::vector<float>{-5.0f, 9.0f});
  CHECK(f.find("h")->to_vector_f32() == std::vector<float>{1.0f, -2.0f, 65504.0f, std::ldexp(1.0f, -24)});
  CHECK(f.find("bf")->item() == 1.0);
  CHECK(f.find("u")->to_vector_f32() == std::vector<float>{200.0f, 1.0f});
  // Unpadded header and an empty file are fine too.
  CHECK(safetensors_parse(file_make("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", bytes_of<float>({2.f}), false),
                          "p")
            .find("x")
            ->item() == 2.0);
  CHECK(safetensors_parse(file_make("{}", ""), "empty").tensors.empty());
}

TEST_CASE("rejects truncated and corrupt files, naming the file and the tensor") {
  const std::string ok_header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  const std::string data = bytes_of<float>({1.f, 2.f});
  std::string good = file_make(ok_header, data);
  CHECK_NOTHROW(safetensors_parse(good, "good"));

  check_rejects("", {"truncated"});
  check_rejects(good.substr(0, 5), {"truncated"});
  check_rejects(good.substr(0, 20), {"header length"});          // header cut
  check_rejects(good.substr(0, good.size() - 1), {"'w'", "truncated"});  // data cut
  check_rejects(good + "xyzw", {"belong to no tensor"});         // trailing bytes
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", data), {"malformed"});
  check_rejects(file_make("[1,2]", ""), {"not an object"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", data), {"'w'", "Q7"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", data), {"'w'", "(3,)", "12 bytes"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", data), {"'w'", "non-negative"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", data), {"'w'", "data_offsets"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", data), {"'w'", "begin > end"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", data + data), {"'w'", "gap"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"v\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          data),
                {"overlap"});
  check_rejects(file_make("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", data), {"'w'", "truncated"});
  check_rejects(file_make("{\"__metadata__\":{\"k\":3}," + ok_header.substr(1), data), {"metadata", "'k'"});
  std::string huge = good;
  uint64_t n = uint64_t(1) << 40;
  std::memcpy(&huge[0], &n, 8);
  check_rejects(huge, {"header length"});
  CHECK_THROWS_WITH_AS(safetensors_read(temp_path("does_not_exist.safetensors")), doctest::Contains("does_not_exist"), Error);
}

TEST_CASE("weights: module round trip with PyTorch names; I64 counter") {
  TinyNet net;
  net.w.value_mut().fill_(0.75);
  std::string path = temp_path("w.safetensors");
  weights_save(path, net, {{"arch", "tiny"}});
  SafeTensorsFile f = safetensors_read(path);
  CHECK(f.file_dtypes.at("bn1.num_batches_tracked") == "I64");
  CHECK(f.find("weight") != nullptr);
  CHECK(f.find("bn1.running_mean") != nullptr);

  TinyNet other;
  Tensor before = other.w.value();  // load must write in place (views stay views)
  weights_load(path, other);
  CHECK(other.w.value().storage() == before.storage());
  CHECK(other.w.value().to_vector_f32() == std::vector<float>(6, 0.75f));
}

TEST_CASE("weights: missing, extra and mismatched tensors are all listed; nothing is loaded") {
  TinyNet net;
  std::string path = temp_path("w2.safetensors");
  // File: weight with the wrong shape, no running_mean, an extra tensor, counter present.
  weights_save(path, std::vector<NamedTensor>{{"weight", Tensor::zeros({4, 3})},
                                              {"bn1.num_batches_tracked", Tensor::scalar(3.0)},
                                              {"fc.bias", Tensor::zeros({5})}});
  try {
    weights_load(path, net);
    FAIL("loaded a mismatched file");
  } catch (const Error& e) {
    std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("nothing was loaded") != std::string::npos);
    CHECK(msg.find("missing from the file (1): 'bn1.running_mean'") != std::string::npos);
    CHECK(msg.find("not in the model (1): 'fc.bias'") != std::string::npos);
    CHECK(msg.find("'weight': file has F32 (4, 3), model expects F32 (2, 3)") != std::string::npos);
  }
  CHECK(net.w.value().to_vector_f32() == std::vector<float>(6, 1.5f));  // untouched

  // dtype mismatch: an F64 file into an F32 model.
  weights_save(path, std::vector<NamedTensor>{{"weight", Tensor::zeros({2, 3}, DType::F64)},
                                              {"bn1.running_mean", Tensor::zeros({2})},
                                              {"bn1.num_batches_tracked", Tensor::scalar(3.0)}});
  CHECK_THROWS_WITH_AS(weights_load(path, net), doctest::Contains("'weight': file has F64"), Error);
  CHECK(net.w.value().to_vector_f32() == std::vector<float>(6, 1.5f));

  // A truncated weights file is refused.
  weights_save(path, net);
  std::string bytes = file_read_all(path);
  file_write_atomic(path, bytes.substr(0, bytes.size() - 3));
  CHECK_THROWS_WITH_AS(weights_load(path, net), doctest::Contains("truncated"), Error);
}
