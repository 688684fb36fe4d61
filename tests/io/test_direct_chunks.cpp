// Direct chunk reads (io/direct_chunk_reader.h): every tile read with
// H5Dread_chunk + libdeflate and our own unshuffle (deflate levels 1 to 9),
// or with pread for unfiltered chunks, is byte for byte what H5Dread gives, the direct path is taken exactly where it should be, and anything it
// does not handle falls back to H5Dread. Chunks the writer encodes itself
// decode through HDF5's filters. Also: BatchReader's one-pass
// normalisation and augmentation into the batch equals the tensor expression
// apply_transform((image - mean) / std) exactly, and batch memory is recycled
// safely. (h5py-written archives: test_h5py_archives.cpp.)
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <hdf5.h>

#include <filesystem>
#include <set>
#include <thread>

#include "io/archive_fixtures.h"
#include "io/augmentation.h"
#include "io/byte_shuffle.h"
#include "io/batch_reader.h"
#include "io/loader_fixtures.h"
#include "io/tile_archive.h"
#include "support/process.h"

namespace da::io {
namespace {

namespace fs = std::filesystem;

class DirectChunkTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = da::test::make_temp_dir("da_direct"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

// Reads every tile's image and mask from `file` with direct reads on and off
// and checks both give the same bytes, equal to `expected` where given.
void expect_both_ways_identical(const std::string& file, int64_t tiles, int64_t expected_direct) {
  const TileArchive direct(file);
  TileArchive plain(file);
  plain.set_direct_chunk_reads(false);
  std::vector<char> a(direct.image_bytes()), b(plain.image_bytes());
  std::vector<uint8_t> ma(direct.mask_bytes()), mb(direct.mask_bytes());
  for (int64_t n = 0; n < tiles; ++n) {
    direct.read_image(n, a.data());
    plain.read_image(n, b.data());
    EXPECT_EQ(a, b) << file << " tile " << n;
    if (direct.info().has_masks) {
      direct.read_mask(n, ma.data());
      plain.read_mask(n, mb.data());
      EXPECT_EQ(ma, mb) << file << " mask " << n;
    }
  }
  EXPECT_EQ(direct.read_counts().direct, expected_direct) << file;
  EXPECT_EQ(plain.read_counts().direct, 0) << file;
}

struct Case {
  PixelType type;
  int deflate_level;
  bool shuffle;
};

class DirectChunkCaseTest : public DirectChunkTest, public ::testing::WithParamInterface<Case> {};

TEST_P(DirectChunkCaseTest, DirectReadsEqualH5Dread) {
  TileArchiveLayout layout = test::small_layout(GetParam().type);
  layout.deflate_level = GetParam().deflate_level;
  layout.shuffle = GetParam().shuffle;
  test::write_archive(path("a.h5"), layout, 6);
  expect_both_ways_identical(path("a.h5"), 6, 12);  // images and masks, compressed or not
  const TileArchive archive(path("a.h5"));
  EXPECT_TRUE(archive.direct_chunk_reads_possible());
  std::vector<char> image(archive.image_bytes());
  for (int64_t n = 5; n >= 0; --n) {  // in reverse: each chunk's address is looked up on its first read
    archive.read_image(n, image.data());
    EXPECT_EQ(image, test::expected_image(layout, n)) << "tile " << n;
  }
  archive.read_image(2, image.data());  // again, from the remembered address
  EXPECT_EQ(image, test::expected_image(layout, 2));
  EXPECT_EQ(archive.read_counts().direct, 7);
  EXPECT_EQ(archive.read_counts().h5dread, 0);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DirectChunkCaseTest,
                         ::testing::Values(Case{PixelType::kUint8, 0, false}, Case{PixelType::kUint8, 4, false},
                                           Case{PixelType::kUint8, 4, true}, Case{PixelType::kUint16, 0, false},
                                           Case{PixelType::kUint16, 4, false}, Case{PixelType::kUint16, 4, true},
                                           Case{PixelType::kFloat32, 6, true}, Case{PixelType::kUint8, 1, false},
                                           Case{PixelType::kUint16, 9, true}),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return std::string(pixel_type_name(info.param.type)) + "_deflate" +
                                  std::to_string(info.param.deflate_level) + (info.param.shuffle ? "_shuffle" : "");
                         });

// The writer encodes tiles itself (io/chunk_encoder.h); HDF5's own filter
// pipeline (H5Dread) must decode them, shuffle alone included.
TEST_F(DirectChunkTest, WriterEncodedChunksDecodeThroughHdf5Filters) {
  for (const Case& c : {Case{PixelType::kUint16, 0, true}, Case{PixelType::kFloat32, 0, true},
                        Case{PixelType::kUint8, 9, false}, Case{PixelType::kFloat32, 1, true}}) {
    TileArchiveLayout layout = test::small_layout(c.type);
    layout.deflate_level = c.deflate_level;
    layout.shuffle = c.shuffle;
    const std::string file = path(std::string(pixel_type_name(c.type)) + std::to_string(c.deflate_level) + ".h5");
    test::write_archive(file, layout, 3);
    TileArchive plain(file);
    plain.set_direct_chunk_reads(false);
    std::vector<char> image(plain.image_bytes());
    std::vector<uint8_t> mask(plain.mask_bytes());
    for (int64_t n = 0; n < 3; ++n) {
      plain.read_image(n, image.data());
      EXPECT_EQ(image, test::expected_image(layout, n)) << file << " tile " << n;
      plain.read_mask(n, mask.data());
      EXPECT_EQ(mask, test::expected_mask(layout.height, layout.width, n, layout.classes.size())) << file << " mask " << n;
    }
  }
}

// HDF5's shuffle layout: byte b of element i at b * n + i, a tail shorter
// than one element left in place; unshuffle inverts it.
TEST(ByteShuffle, PlanesThenTailAndBack) {
  const std::vector<unsigned char> in{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};  // two 4-byte elements and a 2-byte tail
  std::vector<unsigned char> shuffled(in.size()), back(in.size());
  shuffle_bytes(in.data(), shuffled.data(), in.size(), 4);
  EXPECT_EQ(shuffled, (std::vector<unsigned char>{0, 4, 1, 5, 2, 6, 3, 7, 8, 9}));
  unshuffle_bytes(shuffled.data(), back.data(), in.size(), 4);
  EXPECT_EQ(back, in);
  shuffle_bytes(in.data(), shuffled.data(), 9, 2);  // uint16's own loop, one byte of tail
  EXPECT_EQ(std::vector<unsigned char>(shuffled.begin(), shuffled.begin() + 9),
            (std::vector<unsigned char>{0, 2, 4, 6, 1, 3, 5, 7, 8}));
  unshuffle_bytes(shuffled.data(), back.data(), 9, 2);
  EXPECT_EQ(std::vector<unsigned char>(back.begin(), back.begin() + 9),
            std::vector<unsigned char>(in.begin(), in.begin() + 9));
}

// A chunk stored with its deflate skipped (filter mask bit set, as HDF5 does
// for an optional filter that failed) is left to H5Dread, which reads it right.
TEST_F(DirectChunkTest, ChunkWithSkippedFilterFallsBackToH5Dread) {
  TileArchiveLayout layout = test::small_layout(PixelType::kUint16);
  layout.deflate_level = 4;
  layout.with_masks = false;
  test::write_archive(path("a.h5"), layout, 3);
  {
    const hid_t file = H5Fopen(path("a.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    const hid_t images = H5Dopen2(file, "/images", H5P_DEFAULT);
    const std::vector<char> raw = test::expected_image(layout, 1);
    const hsize_t offset[4] = {1, 0, 0, 0};
    ASSERT_GE(H5Dwrite_chunk(images, H5P_DEFAULT, 1u /* filter 0, deflate, skipped */, offset, raw.size(), raw.data()),
              0);
    H5Dclose(images);
    H5Fclose(file);
  }
  const TileArchive archive(path("a.h5"));
  std::vector<char> image(archive.image_bytes());
  for (int64_t n = 0; n < 3; ++n) {
    archive.read_image(n, image.data());
    EXPECT_EQ(image, test::expected_image(layout, n)) << "tile " << n;
  }
  EXPECT_EQ(archive.read_counts().direct, 2);
  EXPECT_EQ(archive.read_counts().h5dread, 1);
}

// Threads with their own TileArchive decode concurrently (outside HDF5's lock) and correctly.
TEST_F(DirectChunkTest, ConcurrentReadersGetTheirTiles) {
  TileArchiveLayout layout = test::small_layout(PixelType::kUint16);
  layout.deflate_level = 4;
  layout.shuffle = true;
  test::write_archive(path("a.h5"), layout, 16);
  std::vector<int> wrong(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const TileArchive archive(path("a.h5"));
      std::vector<char> image(archive.image_bytes());
      for (int r = 0; r < 20; ++r) {
        for (int64_t n = t; n < 16; n += 2) {
          archive.read_image(n, image.data());
          if (image != test::expected_image(layout, n)) ++wrong[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

// The fused pass of BatchReader::read against the tensor expression it
// replaced, bit for bit, over every flip/rotation and random crops.
TEST_F(DirectChunkTest, FusedNormalisationAndAugmentationEqualTensorExpression) {
  TileArchiveLayout layout = test::small_layout(PixelType::kUint16);
  layout.height = layout.width = 6;
  layout.deflate_level = 1;
  test::write_archive(path("a.h5"), layout, 8);
  for (const int64_t crop : {0, 4}) {
    LoaderOptions options;
    options.augmentation.hflip = options.augmentation.vflip = options.augmentation.rot90 = true;
    options.augmentation.crop_size = crop;
    options.normalization.mode = NormalizationMode::kConfig;
    options.normalization.mean = {100.0, 2000.5, -3.0};
    options.normalization.std = {3.0, 70.25, 0.1};
    options.seed = 11;
    const BatchReader reader({path("a.h5")}, options);
    const at::Tensor mean = at::tensor(std::vector<float>{100.0f, 2000.5f, -3.0f}).view({3, 1, 1});
    const at::Tensor std = at::tensor(std::vector<float>{3.0f, 70.25f, 0.1f}).view({3, 1, 1});
    std::set<int> seen;
    for (int64_t epoch = 0; epoch < 6; ++epoch) {
      const Batch batch = reader.read({0, 1, 2, 3, 4, 5, 6, 7}, epoch);
      ASSERT_EQ(batch.image.sizes()[0], 8);
      for (int64_t i = 0; i < 8; ++i) {
        const TileTransform transform = draw_transform(options.augmentation, options.seed, epoch, i, 6, 6);
        seen.insert(transform.rot90 * 4 + transform.hflip * 2 + transform.vflip);
        const at::Tensor expected = apply_transform((test::raw_tile(layout, i) - mean) / std, transform);
        EXPECT_TRUE(at::equal(batch.image[i], expected)) << "epoch " << epoch << " tile " << i << " crop " << crop;
        EXPECT_TRUE(at::equal(batch.mask[i], apply_transform(test::raw_mask(layout, i), transform)))
            << "epoch " << epoch << " tile " << i;
      }
    }
    EXPECT_GE(seen.size(), 12U);  // most of the 16 flip/rotation combinations were exercised
  }
}

// Batch memory comes from a pool: batches kept by the consumer are never
// overwritten by later ones, and live on after the reader is gone.
TEST_F(DirectChunkTest, RecycledBatchMemoryIsNeverShared) {
  const TileArchiveLayout layout = test::small_layout(PixelType::kUint8);
  test::write_archive(path("a.h5"), layout, 4);
  LoaderOptions options;
  std::vector<Batch> kept;
  {
    const BatchReader reader({path("a.h5")}, options);
    for (int round = 0; round < 3; ++round) {
      for (int64_t n = 0; n < 4; ++n) {
        Batch batch = reader.read({n}, 0);
        if (round == 0) kept.push_back(std::move(batch));  // the rest are dropped and recycled
      }
    }
  }
  for (int64_t n = 0; n < 4; ++n) {
    EXPECT_TRUE(at::equal(kept[n].image[0], test::raw_tile(layout, n) / 255.0f)) << "tile " << n;
    EXPECT_TRUE(at::equal(kept[n].mask[0], test::raw_mask(layout, n))) << "tile " << n;
  }
}

}  // namespace
}  // namespace da::io
