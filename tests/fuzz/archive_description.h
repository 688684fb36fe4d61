// HDF5 files described by bytes, for fuzzing the tile-archive reader with
// files HDF5 itself writes: the fuzzer mutates the description (attributes of
// any type, shape and length; datasets of any rank, dtype, chunking,
// filters and size; raw chunk bytes as they sit on disk), so what it finds
// is in our reading of HDF5 objects rather than in HDF5's parsing of a
// damaged superblock. Seeds are real archives turned into descriptions.
//
// A description is a sequence of records, each a tag byte then (tag % 4):
//   0 attribute: owner (short string, "" = the root group), name, type,
//                rank (% 3), dims (u16 each), the values (a short string
//                each for variable-length strings, else raw bytes)
//   1 dataset:   path, type, rank (% 6), dims (u32 each), layout byte (bit 0
//                chunked, 1 shuffle, 2 deflate, 3 fletcher32, 4 unlimited
//                maximum dims), chunk dims (u32 each, when chunked), deflate level
//   2 chunk:     raw bytes of one chunk of the last dataset (H5Dwrite_chunk):
//                offset (u32 per dim), filter mask (u32), length (u32), bytes
//   3 rows:      values of the last dataset's first axis (H5Dwrite):
//                first row (u32), row count (u32), raw bytes
//   type: class byte (% 5: signed, unsigned, float, fixed string,
//         variable string) and a size byte.
// Records that HDF5 refuses (a chunk offset off the grid, a rank-0 chunked
// dataset) are skipped, and so are chunks over 64 MiB and rows written into
// a contiguous dataset over 64 MiB (HDF5 would fill them whole): the
// description still makes a file, in bounded time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace da::fuzz {

// Writes the HDF5 file `path` that `description` describes.
void build_archive(const uint8_t* description, size_t size, const std::string& path);

// The description of the HDF5 file at `path` (attributes of the root group
// and of datasets, every dataset with its chunks' raw bytes).
std::string describe_archive(const std::string& path);

}  // namespace da::fuzz
