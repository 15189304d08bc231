// Writes the seed corpora of the fuzz targets into <out>/<target>/ (scripts/fuzz_seeds.sh runs
// it into tests/fuzz/corpus/). Every seed is made here from the project's own writers or written byte
// by byte (DICOM, PGM), small and deterministic; nothing comes from ../shared/.
#include <stb/stb_image_write.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "checkpoint_fixture.h"
#include "models/geometry/annotation.h"
#include "models/image/image_io.h"
#include "models/nets/spine_model.h"
#include "tensor/file_io.h"
#include "tensor/safetensors.h"
#include "train/run/train_config.h"
#include "train/synth/synth.h"

using namespace sm;
namespace fs = std::filesystem;

namespace {

fs::path g_out;

void seed_write(const std::string& target, const std::string& name, const std::string& bytes) {
  fs::create_directories(g_out / target);
  std::ofstream((g_out / target / name).string(), std::ios::binary | std::ios::trunc) << bytes;
}

// ---- safetensors --------------------------------------------------------------------------
void seeds_safetensors() {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4}, DType::F64), s = Tensor::zeros({});
  for (int64_t i = 0; i < 6; ++i) a.data<float>()[i] = float(i) - 2.5f;
  seed_write("safetensors", "two_tensors", safetensors_serialize({{"conv.weight", a}, {"bn.running_mean", b}}, {{"format", "pt"}}));
  seed_write("safetensors", "scalar_i64", safetensors_serialize({{"bn.num_batches_tracked", s}}, {}, {{"num_batches_tracked"}}));
  seed_write("safetensors", "empty", safetensors_serialize({}));
}

// ---- images -------------------------------------------------------------------------------
std::string stb_bytes(const std::function<void(stbi_write_func*, void*)>& write) {
  std::string out;
  write([](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(n)); }, &out);
  return out;
}

// DICOM data elements, little endian: explicit VR (2-byte length, or 4 after OB/OW/UN/SQ/UT) or implicit.
struct DicomWriter {
  bool explicit_vr = true;
  std::string bytes;
  void u16(uint16_t v) { bytes += char(v & 0xFF), bytes += char(v >> 8); }
  void u32(uint32_t v) { u16(uint16_t(v & 0xFFFF)), u16(uint16_t(v >> 16)); }
  void element(uint16_t group, uint16_t elem, const char* vr, std::string value) {
    if (value.size() % 2) value += (std::string(vr) == "UI" || std::string(vr) == "OB") ? '\0' : ' ';
    u16(group), u16(elem);
    const std::string v(vr);
    if (explicit_vr && group != 0xFFFE) {
      bytes += v;
      if (v == "OB" || v == "OW" || v == "UN" || v == "SQ" || v == "UT") u16(0), u32(uint32_t(value.size()));
      else u16(uint16_t(value.size()));
    } else {
      u32(uint32_t(value.size()));
    }
    bytes += value;
  }
  void us(uint16_t g, uint16_t e, uint16_t v) { element(g, e, "US", std::string{char(v & 0xFF), char(v >> 8)}); }
};

std::string dicom_make(bool part10, int bits_stored, bool signed_pixels, bool monochrome1, bool window) {
  const int w = 4, h = 3;
  DicomWriter d;
  std::string out;
  if (part10) {
    DicomWriter meta;
    meta.element(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.1");
    meta.element(0x0002, 0x0003, "UI", "1.2.3.4.5");
    meta.element(0x0002, 0x0010, "UI", "1.2.840.10008.1.2.1");
    DicomWriter group_length;
    group_length.element(0x0002, 0x0000, "UL", std::string{char(meta.bytes.size() & 0xFF), char((meta.bytes.size() >> 8) & 0xFF), 0, 0});
    out = std::string(128, '\0') + "DICM" + group_length.bytes + meta.bytes;
  } else {
    d.explicit_vr = false;
  }
  d.element(0x0008, 0x0060, "CS", "CR");
  d.us(0x0028, 0x0002, 1);
  d.element(0x0028, 0x0004, "CS", monochrome1 ? "MONOCHROME1" : "MONOCHROME2");
  d.us(0x0028, 0x0010, h);
  d.us(0x0028, 0x0011, w);
  d.element(0x0028, 0x0030, "DS", "0.14\\0.15");
  const int allocated = bits_stored > 8 ? 16 : 8;
  d.us(0x0028, 0x0100, uint16_t(allocated));
  d.us(0x0028, 0x0101, uint16_t(bits_stored));
  d.us(0x0028, 0x0102, uint16_t(bits_stored - 1));
  d.us(0x0028, 0x0103, signed_pixels ? 1 : 0);
  if (window) {
    d.element(0x0028, 0x1050, "DS", "100");
    d.element(0x0028, 0x1051, "DS", "200");
    d.element(0x0028, 0x1052, "DS", "-10");
    d.element(0x0028, 0x1053, "DS", "2");
  }
  std::string pixels;
  for (int i = 0; i < w * h; ++i) {
    const int v = (i * 37) % (1 << (bits_stored - 1));
    pixels += char(v & 0xFF);
    if (allocated == 16) pixels += char((v >> 8) & 0xFF);
  }
  d.element(0x7FE0, 0x0010, allocated == 16 ? "OW" : "OB", pixels);
  return out + d.bytes;
}

void seeds_image() {
  const int w = 5, h = 4;
  std::vector<uint8_t> g8(w * h), rgb(w * h * 3);
  std::vector<uint16_t> g16(w * h);
  for (int i = 0; i < w * h; ++i) {
    g8[size_t(i)] = uint8_t(i * 13), g16[size_t(i)] = uint16_t(i * 3001);
    for (int c = 0; c < 3; ++c) rgb[size_t(3 * i + c)] = uint8_t(i * 7 + c * 80);
  }
  seed_write("image", "gray8.png", png_encode(g8.data(), w, h, 1, 8));
  seed_write("image", "gray16.png", png_encode(g16.data(), w, h, 1, 16));
  seed_write("image", "rgb8.png", png_encode(rgb.data(), w, h, 3, 8));
  seed_write("image", "gray.jpg", stb_bytes([&](stbi_write_func* f, void* c) { stbi_write_jpg_to_func(f, c, w, h, 1, g8.data(), 80); }));
  seed_write("image", "rgb.jpg", stb_bytes([&](stbi_write_func* f, void* c) { stbi_write_jpg_to_func(f, c, 17, 9, 3, std::vector<uint8_t>(17 * 9 * 3, 90).data(), 50); }));
  seed_write("image", "rgb.bmp", stb_bytes([&](stbi_write_func* f, void* c) { stbi_write_bmp_to_func(f, c, w, h, 3, rgb.data()); }));
  seed_write("image", "gray8.pgm", "P5\n5 4\n255\n" + std::string(g8.begin(), g8.end()));
  std::string p16 = "P5\n5 4\n65535\n";
  for (uint16_t v : g16) p16 += char(v >> 8), p16 += char(v & 0xFF);
  seed_write("image", "gray16.pgm", p16);
  seed_write("image", "rgb.ppm", "P6\n5 4\n255\n" + std::string(rgb.begin(), rgb.end()));
  seed_write("image", "mono2_12bit_window.dcm", dicom_make(true, 12, false, false, true));
  seed_write("image", "mono1_8bit.dcm", dicom_make(true, 8, false, true, false));
  seed_write("image", "signed_16bit.dcm", dicom_make(true, 16, true, false, true));
  seed_write("image", "acr_nema_implicit.dcm", dicom_make(false, 10, false, false, false));
}

// ---- JSON: annotations, schemas, run configs, network configs ------------------------------
void seeds_json() {
  const Schema& lumbar = schema_builtin("lumbar-lateral");
  const SynthSample s = synth_generate(lumbar, 1, 0, SynthOptions{64});
  seed_write("annotation", "synth_lumbar.json", annotation_to_json(s.annotation, lumbar).dump(1));
  const Schema& ap = schema_builtin("aasce-ap");
  Annotation a;
  a.image = "film.jpg", a.schema = ap.name, a.pixel_spacing_mm = std::array<double, 2>{0.2, 0.2};
  for (int i = 0; i < ap.landmark_count(); ++i) {
    const bool absent = i % 11 == 5;
    a.points.push_back({absent ? NAN : 10.0 + i, absent ? NAN : 5.0 * i});
    a.visible.push_back(!absent && i % 7 != 3);
  }
  a.extra["flags"] = {"irregular_order"};
  seed_write("annotation", "aasce_ap.json", annotation_to_json(a, ap).dump());
  for (const auto& n : schema_builtin_names()) {
    seed_write("schema", n + ".definition.json", schema_builtin(n).definition.dump(1));
    seed_write("schema", n + ".canonical.json", schema_to_json(schema_builtin(n)).dump());
  }
  for (const char* preset : {"small", "paper"}) {
    seed_write("run_config", std::string(preset) + ".json", train_config_to_json(train_config_default(preset)).dump(1));
    for (const auto& n : schema_builtin_names()) {
      const ModelSpec spec = model_spec_preset(schema_builtin(n), preset);
      seed_write("network_config", n + "." + preset + ".model.json", model_spec_to_json(spec).dump());
      if (std::string(preset) == "small") seed_write("network_config", n + ".detect_net.json", dsnt_net_config_to_json(spec.detect.net).dump());
    }
  }
  const char* overrides = R"({"detect": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [64, 64]},
    "refine": {"widths": [4, 8, 8, 8], "blocks": [1, 1, 1, 1], "input": [32, 32]}})";
  seed_write("network_config", "overrides.json", overrides);
  seed_write("run_config", "tiny.json", std::string(R"({"schema": "lumbar-lateral", "preset": "small", "model": )") + overrides +
    R"(, "data": {"train": "data", "val_fraction": 0.25}, "seed": 5, "threads": 2,
    "stages": {"detect": {"steps": 6, "batch": 2, "validations": 2, "warmup_steps": 2},
               "refine": {"steps": 6, "batch": 4, "validations": 2, "warmup_steps": 2}}})");
}

// ---- checkpoint state, AASCE CSVs -----------------------------------------------------------
void seeds_checkpoint() {
  const fs::path dir = fs::temp_directory_path() / ("spinemark_fuzz_seeds_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fuzz::CheckpointFixture f;
  checkpoint_save((dir / "ckpt").string(), *f.net, *f.adam, fuzz::CheckpointFixture::state());
  seed_write("checkpoint", "adam_step3.state", file_read_all(checkpoint_paths((dir / "ckpt").string()).state));
  fs::remove_all(dir);
}

void seeds_aasce() {
  std::string names, marks, angles;
  for (int r = 0; r < 3; ++r) {
    names += "film" + std::to_string(r) + ".jpg\n";
    std::string xs, ys;
    for (int v = 0; v < 17; ++v) {
      const int block = r == 1 ? (v + 1) % 17 : v;  // record 1: T1 stored last
      for (int k = 0; k < 4; ++k) {
        char x[32], y[32];
        std::snprintf(x, sizeof x, "%.6f", 0.4 + 0.1 * (k % 2) + 0.002 * v);
        std::snprintf(y, sizeof y, "%.6f", 0.05 + 0.05 * block + 0.03 * (k / 2) - (r == 2 && v == 8 ? 0.2 : 0.0));
        xs += (xs.empty() ? "" : ",") + std::string(x), ys += "," + std::string(y);
      }
    }
    marks += xs + ys + "\n";
    angles += std::to_string(10 + r) + ".5,3.25,8\n";
  }
  seed_write("aasce", "three_rows.txt", names + "--8<--\n" + marks + "--8<--\n" + angles);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds OUT_DIR (e.g. tests/fuzz/corpus)\n");
    return 2;
  }
  g_out = argv[1];
  try {
    seeds_safetensors();
    seeds_image();
    seeds_json();
    seeds_checkpoint();
    seeds_aasce();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
