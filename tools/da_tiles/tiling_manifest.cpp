#include "tiling_manifest.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/atomic_file.h"

namespace da::tiles {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

// A raster by its absolute path, size and modification time: a changed file is a different input.
ordered_json describe_raster(const std::string& path) {
  struct stat status {};
  if (::stat(path.c_str(), &status) != 0) throw std::runtime_error(path + ": cannot stat");
  return {{"path", fs::weakly_canonical(path).string()},
          {"bytes", static_cast<int64_t>(status.st_size)},
          {"modified_ns", static_cast<int64_t>(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec}};
}

ordered_json describe(const MakeOptions& options) {
  ordered_json manifest = {{"tile_size", options.tile_size},   {"stride", options.stride},
                           {"shard_tiles", options.shard_tiles}, {"max_nodata", options.max_nodata},
                           {"max_ignore", options.max_ignore},   {"deflate", options.deflate},
                           {"domain", options.domain},           {"classes", options.classes},
                           {"bands", options.bands},             {"ignore_index", options.ignore_index}};
  manifest["images"] = ordered_json::array();
  for (const std::string& path : options.images) manifest["images"].push_back(describe_raster(path));
  manifest["labels"] = ordered_json::array();
  for (const std::string& path : options.labels) manifest["labels"].push_back(describe_raster(path));
  return manifest;
}

// The first key (as a JSON pointer, "/images/2/modified_ns") where `a` and `b` differ; "" if none.
std::string first_difference(const ordered_json& a, const ordered_json& b, const std::string& where) {
  if (a.type() != b.type() || !(a.is_object() || a.is_array())) return a == b ? "" : where;
  if (a.size() != b.size()) return where;
  if (a.is_array()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (std::string at = first_difference(a[i], b[i], where + "/" + std::to_string(i)); !at.empty()) return at;
    }
    return "";
  }
  for (const auto& [key, value] : a.items()) {
    if (!b.contains(key)) return where + "/" + key;
    if (std::string at = first_difference(value, b[key], where + "/" + key); !at.empty()) return at;
  }
  return "";
}

}  // namespace

std::string manifest_path(const std::string& out) {
  const fs::path path(out);
  return (path.parent_path() / (path.stem().string() + ".tiling.json")).string();
}

void write_or_match_manifest(const MakeOptions& options) {
  const std::string path = manifest_path(options.out);
  const ordered_json wanted = describe(options);
  if (!fs::exists(path)) {
    io::write_file_atomically(path, wanted.dump(2) + "\n");
    return;
  }
  std::ifstream in(path);
  const ordered_json found = ordered_json::parse(in, nullptr, false);
  if (found.is_discarded()) throw std::runtime_error(path + ": not valid JSON; remove it to start over");
  const std::string key = first_difference(wanted, found, "");
  if (key.empty()) return;
  const ordered_json::json_pointer pointer(key);
  const std::string before = found.contains(pointer) ? found[pointer].dump() : "nothing";
  const std::string now = wanted.contains(pointer) ? wanted[pointer].dump() : "nothing";
  throw std::runtime_error(path + ": the shards there were made with " + key.substr(1) + " = " + before +
                           ", this run has " + now + "; rerun with the same options and rasters, or remove the " +
                           "shards and this file to start over");
}

}  // namespace da::tiles
