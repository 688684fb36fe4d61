// Normalising a batch the loader delivered as stored pixels
// (LoaderOptions::normalize false), wherever it is: on the GPU after the
// host-to-device copy (a quarter of the bytes for uint8 tiles), or on the CPU.
#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

#include "io/batch.h"
#include "io/normalization.h"

namespace da::io {

// Stored pixels (uint8; int16 holding the bits of uint16, Torch 1.13 having
// no uint16; float32; any device) as their float32 values (uint16: 0..65535).
at::Tensor stored_pixels_as_float(const at::Tensor& image);

// An image batch [B, C, H, W] of stored pixels as float32
// (x - mean[c]) / std[c]: the same float operations as the loader's own
// normalisation, so bit-identical to it.
at::Tensor normalize_image(const at::Tensor& image, const BandNormalization& normalization);

// Normalises batches where they are, holding mean and std on the batches'
// device: copied there once (the first batch, without blocking), not with a
// blocking copy every step that would make the host wait for the GPU.
class BatchNormalizer {
 public:
  explicit BatchNormalizer(BandNormalization normalization) : normalization_(std::move(normalization)) {}

  // The image normalised and the uint8 mask (if any) widened to int64, in
  // place: afterwards the batch is what a normalising loader would have
  // delivered.
  void operator()(Batch& batch);

 private:
  BandNormalization normalization_;
  at::Tensor mean_;  // [1, C, 1, 1] float32 on the last batch's device
  at::Tensor std_;
};

}  // namespace da::io
