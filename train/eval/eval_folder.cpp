// `spinemark eval` as a library call (see eval.h): model, dataset listing with named skips, the
// pipeline over every film, the written report.
#include <algorithm>
#include <filesystem>
#include <omp.h>

#include "models/nets/spine_model.h"
#include "tensor/check.h"
#include "tensor/file_io.h"
#include "train/eval/eval.h"

namespace sm {

namespace {

// The last component of a path, "models/a/" included.
std::string path_name(const std::string& path) {
  std::filesystem::path p(path);
  return p.has_filename() ? p.filename().string() : p.parent_path().filename().string();
}

}  // namespace

EvalResult eval_folder_run(const EvalOptions& o, const EvalProgress& progress) {
  auto log = [&o](const std::string& line) { if (o.log) o.log(line); };
  const SpineModel model = spine_model_load(o.model);
  const Schema& schema = model.spec.schema;
  // A user schema travels inside model.json; annotations name it, so make the name resolvable.
  const auto builtin = schema_builtin_names();
  if (std::find(builtin.begin(), builtin.end(), schema.name) == builtin.end()) schema_register(schema);
  eval_out_check(o.out, o.data);
  for (const std::string& n : file_tmp_stale_remove(o.out)) log("eval: removed " + n + " (a temporary left by a killed process)");
  std::vector<EvalSkip> listing_skips;  // entries the listing could not read: named, not fatal
  DatasetOptions opt;
  opt.schema = schema.name;
  opt.on_bad_entry = [&listing_skips](const std::string& source, const std::string& why) {
    const bool named = why.compare(0, source.size() + 2, source + ": ") == 0;  // the message often starts with the source
    listing_skips.push_back({source, named ? why.substr(source.size() + 2) : why});
  };
  const std::vector<DatasetEntry> entries = dataset_list(o.data, opt);
  const Pipeline pipeline = Pipeline::from_model(model, o.device);
  const std::string device = o.device == Device::CUDA ? "cuda" : "cpu";
  log("eval: " + std::to_string(entries.size()) + " images, schema " + schema.name + ", device " + device + ", " +
      std::to_string(omp_get_max_threads()) + " threads");
  EvalResult result = eval_run(pipeline, entries, progress);
  result.skipped.insert(result.skipped.begin(), listing_skips.begin(), listing_skips.end());
  for (const EvalSkip& k : result.skipped) log("eval: skipped " + k.source + ": " + k.reason);
  SM_CHECK(!result.images.empty(), "no film of " << o.data << " could be evaluated (" << result.skipped.size() << " skipped, above)");
  const std::string title = o.title.empty() ? "spinemark eval: " + path_name(o.model) + " on " + path_name(o.data) : o.title;
  eval_write(o.out, result, title);
  return result;
}

}  // namespace sm
