#include "io/archive_set.h"

#include <glob.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace da::io {
namespace {

bool is_pattern(const std::string& entry) { return entry.find_first_of("*?[") != std::string::npos; }

std::vector<std::string> glob_matches(const std::string& pattern) {
  glob_t matches{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
  std::vector<std::string> paths;
  if (rc == 0) paths.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
  ::globfree(&matches);
  if (rc == GLOB_NOMATCH) throw ArchiveError("archive pattern '" + pattern + "' matches no file");
  if (rc != 0) throw ArchiveError("archive pattern '" + pattern + "': cannot read the directories it names");
  return paths;  // glob(3) sorts them
}

std::string list(const std::vector<std::string>& names) {
  std::string text = "[";
  for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
  return text + "]";
}

std::string tile_size(const ArchiveInfo& info) {
  return std::to_string(info.height) + "x" + std::to_string(info.width);
}

}  // namespace

std::vector<std::string> expand_archive_paths(const std::vector<std::string>& entries) {
  if (entries.empty()) throw ArchiveError("no archive file given");
  std::vector<std::string> paths;
  std::set<std::string> seen;
  for (const std::string& entry : entries) {
    for (const std::string& path : is_pattern(entry) ? glob_matches(entry) : std::vector<std::string>{entry}) {
      if (!seen.insert(path).second) throw ArchiveError(path + ": listed twice in the archive list");
      paths.push_back(path);
    }
  }
  return paths;
}

ArchiveSet::ArchiveSet(const std::vector<std::string>& entries, size_t max_open, bool indexed)
    : max_open_(max_open), open_(max_open), descriptors_(max_open) {
  if (max_open_ == 0) throw ArchiveError("archive set: at most 0 open shards allowed; at least 1 is needed");
  for (const std::string& path : expand_archive_paths(entries)) {
    TileArchive archive(path);
    Shard shard{path, archive.info(), FileDescriptor(path).identity(),
                indexed ? std::make_shared<ShardIndex>() : nullptr};
    if (!shards_.empty()) check_agreement(shard);
    offsets_.push_back(offsets_.back() + archive.size());
    shards_.push_back(std::move(shard));
    keep_open(shards_.size() - 1, std::move(archive));
  }
}

ArchiveSet::ArchiveSet(const ArchiveSet& other)
    : shards_(other.shards_),
      offsets_(other.offsets_),
      max_open_(other.max_open_),
      open_(other.max_open_),
      descriptors_(other.max_open_) {}

void ArchiveSet::check_agreement(const Shard& shard) const {
  const Shard& first = shards_.front();
  const ArchiveInfo& a = first.info;
  const ArchiveInfo& b = shard.info;
  const auto differ = [&](const char* what, const std::string& first_value, const std::string& value) {
    if (first_value != value) {
      throw ArchiveError("shards disagree on " + std::string(what) + ": " + first.path + " has " + first_value +
                         ", " + shard.path + " has " + value);
    }
  };
  differ("domain", a.domain, b.domain);
  differ("bands", list(a.bands), list(b.bands));
  differ("classes", list(a.classes), list(b.classes));
  differ("ignore_index", std::to_string(a.ignore_index), std::to_string(b.ignore_index));
  differ("dtype", pixel_type_name(a.pixel_type), pixel_type_name(b.pixel_type));
  differ("tile size", tile_size(a), tile_size(b));
  differ("/masks", a.has_masks ? "masks" : "no masks", b.has_masks ? "masks" : "no masks");
}

TileArchive& ArchiveSet::keep_open(size_t i, TileArchive archive) const {
  ++opens_;
  return open_.add(i, std::move(archive));  // may close the least recently used HDF5 file
}

const TileArchive& ArchiveSet::shard(size_t i) const {
  const Shard& shard = shards_.at(i);
  if (const TileArchive* open = open_.find(i)) return *open;
  TileArchive archive(shard.path);
  // The global index was built from the counts read when the set was made.
  if (archive.size() != shard.info.num_tiles) {
    throw ArchiveError(shard.path + ": has " + std::to_string(archive.size()) + " tiles now, " +
                       std::to_string(shard.info.num_tiles) + " when first opened (the file changed during the run)");
  }
  return keep_open(i, std::move(archive));
}

const ArchiveSet::ShardIndex* ArchiveSet::index_of(size_t i) const {
  const Shard& s = shards_[i];
  if (!s.index) return nullptr;
  std::call_once(s.index->built, [&] {
    const TileArchive& archive = shard(i);
    s.index->images = archive.image_index();
    if (s.info.has_masks) s.index->masks = archive.mask_index();
    // Indexed through and through: no tile needs its HDF5 file any more.
    if (s.index->images && (!s.info.has_masks || s.index->masks)) {
      open_.erase(i);
    }
  });
  return s.index.get();
}

bool ArchiveSet::read_indexed(size_t i, const ChunkIndex& index, int64_t row, void* out) const {
  const Shard& shard = shards_[i];
  const FileDescriptor* fd = descriptors_.find(i);
  if (fd == nullptr) {
    FileDescriptor opened(shard.path);
    if (!opened.valid()) return false;  // HDF5 names the problem
    if (opened.identity() != shard.identity) {
      throw ArchiveError(shard.path + ": replaced or modified since the run opened it (the file changed during the run)");
    }
    fd = &descriptors_.add(i, std::move(opened));
  }
  if (!decoder_.read(fd->get(), index, row, out)) return false;
  ++indexed_reads_;
  return true;
}

ArchiveSet::Location ArchiveSet::locate(int64_t index) const {
  if (index < 0 || index >= size()) {
    throw ArchiveError("archive set: tile " + std::to_string(index) + " outside [0, " + std::to_string(size()) + ")");
  }
  // The last shard whose first tile is at or before `index`.
  const auto next = std::upper_bound(offsets_.begin(), offsets_.end(), index);
  const size_t shard = static_cast<size_t>(next - offsets_.begin()) - 1;
  return {shard, index - offsets_[shard]};
}

int64_t ArchiveSet::read_image(int64_t index, void* out, NonFinite policy) const {
  const Location at = locate(index);
  const Shard& s = shards_[at.shard];
  const ShardIndex* indices = index_of(at.shard);
  if (indices && indices->images && read_indexed(at.shard, *indices->images, at.index, out)) {
    return check_image_values(s.info, s.path, at.index, out, policy);
  }
  return shard(at.shard).read_image(at.index, out, policy);
}

void ArchiveSet::read_mask(int64_t index, uint8_t* out) const {
  const Location at = locate(index);
  const Shard& s = shards_[at.shard];
  const ShardIndex* indices = index_of(at.shard);
  if (indices && indices->masks && read_indexed(at.shard, *indices->masks, at.index, out)) {
    check_mask_values(s.info, s.path, at.index, out);
    return;
  }
  shard(at.shard).read_mask(at.index, out);
}

std::optional<BandStats> ArchiveSet::band_stats() const {
  const size_t channels = info().bands.size();
  std::vector<double> sum(channels, 0.0), sum_squares(channels, 0.0);
  for (const Shard& shard : shards_) {
    const ArchiveInfo& info = shard.info;
    if (!info.band_mean || !info.band_std) return std::nullopt;
    // Every tile has the same pixel count, so tiles weigh shards exactly.
    const double weight = static_cast<double>(info.num_tiles);
    for (size_t c = 0; c < channels; ++c) {
      const double mean = (*info.band_mean)[c], std = (*info.band_std)[c];
      sum[c] += weight * mean;
      sum_squares[c] += weight * (std * std + mean * mean);
    }
  }
  BandStats stats;
  const double total = static_cast<double>(size());
  for (size_t c = 0; c < channels; ++c) {
    const double mean = sum[c] / total;
    stats.mean.push_back(mean);
    stats.std.push_back(std::sqrt(std::max(0.0, sum_squares[c] / total - mean * mean)));
  }
  return stats;
}

}  // namespace da::io
