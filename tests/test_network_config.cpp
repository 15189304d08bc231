// Network configs from any file (golden fixtures, model folders, run configs) are checked against
// limits before a single layer is built (issue 11 item 2): no widths, a width of 10^8, a type
// error, or a network too large in all give one message naming the key, never a crash or gigabytes.
#include <doctest/doctest.h>

#include "models/nets/dsnt_net.h"
#include "models/nets/spine_model.h"
#include "tensor/check.h"

using namespace sm;
using json = nlohmann::json;

namespace {

DsntNetConfig small_config() {
  DsntNetConfig c;
  c.backbone.depth = 0;
  c.backbone.blocks = {1, 1, 1, 1};
  c.backbone.widths = {8, 8, 16, 16};
  c.backbone.output_stride = 8;
  c.landmarks = 3;
  return c;
}

}  // namespace

TEST_CASE("DsntNet refuses an empty or absurd config before building anything") {
  Rng rng(1);
  DsntNetConfig c = small_config();
  c.backbone.widths = {};
  c.backbone.blocks = {};
  CHECK_THROWS_WITH_AS(DsntNet(c, rng), doctest::Contains("'widths' must hold 1..16 stages (got 0)"), Error);
  c = small_config();
  c.backbone.widths = {100000000, 16, 16, 24};  // 10^8 channels: gigabytes before the fix
  CHECK_THROWS_WITH_AS(DsntNet(c, rng), doctest::Contains("width 100000000 outside 1..4096"), Error);
  c = small_config();
  c.backbone.widths = std::vector<int64_t>(16, 4096);  // every width allowed, the whole far too large
  c.backbone.blocks = std::vector<int64_t>(16, 2);
  c.backbone.output_stride = 32;
  CHECK_THROWS_WITH_AS(DsntNet(c, rng), doctest::Contains("M parameters, more than 100 M"), Error);
  c = small_config();
  c.landmarks = 0;
  CHECK_THROWS_WITH_AS(DsntNet(c, rng), doctest::Contains("landmarks 0 outside 1..1024"), Error);
  DsntNet ok(small_config(), rng);
  CHECK(ok.parameter_count() > 0);
}

TEST_CASE("the parameter count is computed from the config without building the network") {
  Rng rng(2);
  DsntNetConfig r18;
  r18.backbone = ResNetConfig{};  // depth 18, torchvision widths: 11,170,240 + head
  r18.landmarks = 22;
  CHECK(dsnt_net_parameter_count(r18) == double(DsntNet(r18, rng).parameter_count()));
  CHECK(dsnt_net_parameter_count(r18) == 11170240.0 + 512 * 22);
  DsntNetConfig r50 = r18;
  r50.backbone.depth = 50;
  CHECK(dsnt_net_parameter_count(r50) == double(DsntNet(r50, rng).parameter_count()));
  // Dilated stages of equal width have no downsample: the count is then an upper bound.
  const DsntNetConfig s = small_config();
  CHECK(dsnt_net_parameter_count(s) >= double(DsntNet(s, rng).parameter_count()));
}

TEST_CASE("network config JSON: type errors and bad values name the key") {
  auto fails = [](const char* text, const char* needle) {
    CAPTURE(text);
    CHECK_THROWS_WITH_AS(dsnt_net_config_from_json(json::parse(text), "fixture.safetensors"), doctest::Contains(needle), Error);
  };
  fails(R"({"widths": [], "blocks": [], "landmarks": 2})", "fixture.safetensors: 'widths' must hold 1..16 stages");
  fails(R"({"widths": "16", "landmarks": 2})", "fixture.safetensors: 'widths' must be an array");
  fails(R"({"widths": [16, "32"], "blocks": [1, 1], "landmarks": 2})", "'widths'[1] must be a whole number");
  fails(R"({"widths": [16], "blocks": [1], "landmarks": 2.5})", "'landmarks' must be a whole number");
  fails(R"({"widths": [16], "blocks": [1]})", "'landmarks' is missing");
  fails(R"({"widths": [16], "blocks": [1], "landmarks": 2, "block": "wide"})", "'block' must be");
  fails(R"({"widths": [16], "blocks": [1], "landmarks": 2, "in_channels": 99999999999})", "in_channels 99999999999 outside 1..16");
  // A model folder's model.json: the nets and the other keys.
  const Schema& schema = schema_builtin("lumbar-lateral");
  json j = model_spec_to_json(model_spec_preset(schema, "small"));
  CHECK(model_spec_from_json(j, "model.json").coarse.net.backbone.widths == std::vector<int64_t>{16, 32, 64, 64});
  json bad = j;
  bad["coarse"]["widths"] = json::array();
  CHECK_THROWS_WITH_AS(model_spec_from_json(bad, "model.json"), doctest::Contains("model.json: coarse: 'widths' must hold"), Error);
  bad = j;
  bad["crop"]["margin"] = "wide";
  CHECK_THROWS_WITH_AS(model_spec_from_json(bad, "model.json"), doctest::Contains("model.json: crop: 'margin' must be a number"), Error);
  bad = j;
  bad["refine"]["input"] = json::array({64, "64"});
  CHECK_THROWS_WITH_AS(model_spec_from_json(bad, "model.json"), doctest::Contains("model.json: refine: 'input'[1]"), Error);
  // A run config's model overrides.
  ModelSpec spec = model_spec_preset(schema, "small");
  CHECK_THROWS_WITH_AS(model_spec_override(spec, json::parse(R"({"detect": {"widths": [100000000, 16, 16, 24]}})"), "run.json"),
                       doctest::Contains("run.json: model.detect: width 100000000"), Error);
  CHECK_THROWS_WITH_AS(model_spec_override(spec, json::parse(R"({"refine_passes": "two"})"), "run.json"),
                       doctest::Contains("'refine_passes' must be a whole number"), Error);
}
