// Checkpoints: save, continue, reload, continue again must be bit-identical (llm.c's resume
// test); moments, step and every RNG state restored exactly; bad files refused with nothing changed.
#include <doctest/doctest.h>

#include "test_support.h"

#include <filesystem>
#include <unistd.h>

#include "layers/weights.h"
#include "tensor/file_io.h"
#include "tensor/rng.h"
#include "train/run/checkpoint.h"

using namespace sm;

namespace {

std::string temp_prefix(const std::string& name) {
  static test::TempDir dir("checkpoint");
  return dir.file(name);
}

struct Net : Module {
  Net() {
    w = parameter_add("conv1.weight", Tensor::zeros({2, 3}));
    b = parameter_add("fc.bias", Tensor::zeros({4}));
    buffer_add("bn1.num_batches_tracked", Tensor::scalar(5.0));
  }
  Var forward(const Var& x) override { return x; }
  std::string type_name() const override { return "Net"; }
  Var w, b;
};

// One fake training step: gradients drawn from `rng` (normal, so the spare matters), then Adam.
void train_step(ParameterBuffer& buf, Optimizer& opt, Rng& rng) {
  opt.zero_grad();
  for (auto& g : buf.groups()) tensor_fill_normal(g.grads, rng, 0.0, 1.0);
  opt.step();
}

std::vector<float> flat_values(const ParameterBuffer& buf) { return buf.groups()[0].values.to_vector_f32(); }

}  // namespace

TEST_CASE("resume is bit-identical: weights, moments, step and RNG states") {
  Net net;
  Rng init(7, 1);
  tensor_fill_normal(net.w.value_mut(), init, 0.0, 0.5);
  ParameterBuffer buf(net);
  Adam opt(buf, AdamConfig{});
  Rng noise(42, 3);
  for (int i = 0; i < 4; ++i) train_step(buf, opt, noise);
  (void)noise.normal();  // leave a spare normal in the state
  REQUIRE(noise.state().has_spare);

  TrainState st;
  st.step = opt.step_count();
  st.epoch = 2;
  st.data_position = 17;
  st.rngs["noise"] = noise.state();
  st.rngs["init"] = init.state();
  st.extra_json = R"({"best_loss": 0.125})";
  const std::string prefix = temp_prefix("ckpt_000004");
  checkpoint_save(prefix, net, opt, st);

  for (int i = 0; i < 3; ++i) train_step(buf, opt, noise);
  const std::vector<float> expected = flat_values(buf);
  const std::vector<NamedTensor> expected_state = opt.state_named();

  // A fresh run restored from the checkpoint continues identically.
  Net net2;
  ParameterBuffer buf2(net2);
  Adam opt2(buf2, AdamConfig{});
  TrainState st2 = checkpoint_load(prefix, net2, opt2);
  CHECK(st2.step == 4);
  CHECK(opt2.step_count() == 4);
  CHECK(st2.epoch == 2);
  CHECK(st2.data_position == 17);
  CHECK(st2.extra_json == st.extra_json);
  REQUIRE(st2.rngs.size() == 2);
  Rng::State ns = train_state_rng(st2, "noise");
  CHECK(ns.state == st.rngs["noise"].state);
  CHECK(ns.inc == st.rngs["noise"].inc);
  CHECK(ns.has_spare);
  CHECK(ns.spare == st.rngs["noise"].spare);
  CHECK_THROWS_WITH_AS(train_state_rng(st2, "augment"), doctest::Contains("'augment'"), Error);
  CHECK(buf2.views_intact());
  Rng noise2;
  noise2.state_set(ns);
  for (int i = 0; i < 3; ++i) train_step(buf2, opt2, noise2);
  CHECK(flat_values(buf2) == expected);
  const std::vector<NamedTensor> got_state = opt2.state_named();
  REQUIRE(got_state.size() == expected_state.size());
  for (size_t i = 0; i < got_state.size(); ++i) {
    CHECK(got_state[i].first == expected_state[i].first);
    CHECK(got_state[i].second.to_vector_f64() == expected_state[i].second.to_vector_f64());
  }
  CHECK(net2.state_dict()[2].second.value().item() == 5.0);  // buffers restored too
}

TEST_CASE("bad checkpoints are refused and change nothing") {
  Net net;
  ParameterBuffer buf(net);
  Sgd opt(buf, {0.1, 0.9, 0.0, 0.0, false});
  Rng r(1);
  train_step(buf, opt, r);
  TrainState st;
  st.step = 1;
  st.rngs["shuffle"] = r.state();
  const std::string prefix = temp_prefix("bad");
  checkpoint_save(prefix, net, opt, st);
  const std::vector<float> saved = flat_values(buf);
  const CheckpointPaths paths = checkpoint_paths(prefix);

  Net net2;
  ParameterBuffer buf2(net2);
  Sgd opt2(buf2, {0.1, 0.9, 0.0, 0.0, false});
  auto untouched = [&] {
    CHECK(flat_values(buf2) == std::vector<float>(10, 0.0f));
    CHECK(opt2.step_count() == 0);
  };

  // Truncated state file.
  const std::string state_bytes = file_read_all(paths.state);
  file_write_atomic(paths.state, state_bytes.substr(0, state_bytes.size() - 4));
  CHECK_THROWS_WITH_AS(checkpoint_load(prefix, net2, opt2), doctest::Contains("truncated"), Error);
  untouched();
  file_write_atomic(paths.state, state_bytes);

  // A different optimizer.
  Adam adam(buf2, AdamConfig{});
  CHECK_THROWS_WITH_AS(checkpoint_load(prefix, net2, adam), doctest::Contains("sgd optimizer state"), Error);
  untouched();

  // Weights from another save: the pair no longer matches.
  const std::string weights_bytes = file_read_all(paths.weights);
  net.w.value_mut().fill_(3.0);
  weights_save(paths.weights, net, {{"format", "spinemark.weights"}});
  CHECK_THROWS_WITH_AS(checkpoint_load(prefix, net2, opt2), doctest::Contains("does not belong"), Error);
  untouched();
  file_write_atomic(paths.weights, weights_bytes);

  // A model with another shape: the weights file's tensor is named.
  struct Wide : Net {
    Wide() { parameter_add("head.weight", Tensor::zeros({1})); }
  } wide;
  ParameterBuffer buf3(wide);
  Sgd opt3(buf3, {0.1, 0.9, 0.0, 0.0, false});
  CHECK_THROWS_WITH_AS(checkpoint_load(prefix, wide, opt3), doctest::Contains("'head.weight'"), Error);
  CHECK(opt3.step_count() == 0);

  // And the intact pair loads.
  CHECK(checkpoint_load(prefix, net2, opt2).step == 1);
  CHECK(flat_values(buf2) == saved);
}
