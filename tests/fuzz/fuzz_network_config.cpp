// Fuzz target: network configs: a model folder's model.json (model_spec_from_json), the
// "model" overrides of a run config (model_spec_override) and one network's DsntNetConfig.
// Nothing is built: configs within the limits may still describe very large networks.
#include "fuzz_json.h"
#include "models/nets/spine_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto j = sm::fuzz::json_of(data, size);
  if (!j) return 0;
  sm::fuzz::expect_sm_error_only([&] {
    const sm::ModelSpec spec = sm::model_spec_from_json(*j, "fuzz/model.json");
    const nlohmann::json again = sm::model_spec_to_json(sm::model_spec_from_json(sm::model_spec_to_json(spec), "fuzz"));
    if (again != sm::model_spec_to_json(spec)) {
      std::fprintf(stderr, "fuzz: a model spec changed through its JSON\n");
      std::abort();
    }
  });
  sm::fuzz::expect_sm_error_only([&] {
    sm::ModelSpec spec = sm::model_spec_preset(sm::schema_builtin("lumbar-lateral"), "small");
    sm::model_spec_override(spec, *j, "fuzz overrides");
    for (const sm::NetSpec* n : {&spec.detect, &spec.coarse, &spec.refine}) sm::dsnt_net_config_validate(n->net, "fuzz");
  });
  sm::fuzz::expect_sm_error_only([&] {
    const sm::DsntNetConfig c = sm::dsnt_net_config_from_json(*j);
    sm::dsnt_net_config_validate(c, "fuzz");
  });
  return 0;
}
