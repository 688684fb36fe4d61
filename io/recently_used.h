// At most `capacity` open things (HDF5 files, file descriptors) keyed by
// shard number; adding one more closes the least recently used. Linear
// scans: the capacity is tens of entries, and a miss costs an open anyway.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace da::io {

template <class T>
class RecentlyUsed {
 public:
  explicit RecentlyUsed(size_t capacity) : capacity_(capacity) {}

  // Shard `key`'s entry, marked as just used, or nullptr.
  T* find(size_t key) {
    for (Entry& entry : entries_) {
      if (entry.key == key) {
        entry.last_use = ++uses_;
        return &entry.value;
      }
    }
    return nullptr;
  }
  // Adds `value` for `key` (not present), dropping the least recently used
  // entry when full. The reference holds until the next add or erase.
  T& add(size_t key, T value) {
    if (entries_.size() == capacity_) {
      entries_.erase(std::min_element(entries_.begin(), entries_.end(),
                                      [](const Entry& a, const Entry& b) { return a.last_use < b.last_use; }));
    }
    entries_.push_back({key, ++uses_, std::move(value)});
    return entries_.back().value;
  }
  void erase(size_t key) {
    entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; }),
                   entries_.end());
  }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    size_t key;
    uint64_t last_use;
    T value;
  };
  size_t capacity_;
  uint64_t uses_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace da::io
