// Math shared by the CPU and CUDA kernels: sampling coordinates, bilinear weights with corner validity, index
// arithmetic, FP16 <-> FP32 conversion of raw bits, sigmoid. Everything is __host__ __device__ under nvcc and
// plain inline C++ otherwise, so both kernels compute sampling positions bit-for-bit the same way.
//
// Precision rule (deployment.md section 3): sampling coordinates, bilinear weights and accumulation are FP32
// whatever the tensor types; FP16 positions are only 1/8 px apart in [128, 256) and 1 px above 1024.
#pragma once

#include <math.h>

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define RRSR_HD __host__ __device__ __forceinline__
#else
#define RRSR_HD inline
#endif

// Loop unrolling hint for device code; host compilers of __host__ __device__ code would warn about the pragma.
#if defined(__CUDA_ARCH__)
#define RRSR_UNROLL _Pragma("unroll")
#else
#define RRSR_UNROLL
#endif

namespace rrsr {

// ---------------------------------------------------------------------------------------------------------------
// Sizes

// ONNX Conv/DeformConv output extent along one axis (pads are the two ends of that axis).
RRSR_HD int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad_begin, int64_t pad_end,
                              int64_t dilation) {
  const int64_t span = dilation * (k - 1) + 1;
  const int64_t padded = in + pad_begin + pad_end;
  return padded < span ? 0 : (padded - span) / stride + 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Deformable sampling

// Sampling position of kernel tap `tap_i` for output position `out_i` along one axis, offset added. The integer
// part is exact in FP32 for any image below 2^24 px, so only the offset addition rounds.
RRSR_HD float sample_position(int out_i, int stride, int pad_begin, int tap_i, int dilation, float offset) {
  return static_cast<float>(out_i * stride - pad_begin + tap_i * dilation) + offset;
}

// One bilinear sample: four flat indices into an H x W plane and their weights (mask folded in). A corner outside
// the image has weight 0 and index 0 (a safe address), so a gather needs no branch: v = sum_k w[k] * plane[idx[k]].
struct BilinearSample {
  int idx[4];
  float w[4];
};

// DCNv2 / ONNX DeformConv rule: a position with y <= -1, y >= H, x <= -1 or x >= W reads 0 altogether (this also
// catches NaN and huge offsets before any float -> int conversion); otherwise each of the four corners reads the
// image where it lies inside and 0 where it does not.
RRSR_HD BilinearSample empty_sample() {
  BilinearSample s;
  for (int k = 0; k < 4; ++k) {
    s.idx[k] = 0;
    s.w[k] = 0.0f;
  }
  return s;
}

RRSR_HD BilinearSample bilinear_sample(float y, float x, int h, int w, float scale) {
  if (!(y > -1.0f && y < static_cast<float>(h) && x > -1.0f && x < static_cast<float>(w))) return empty_sample();
  BilinearSample s;
  const float y0f = floorf(y), x0f = floorf(x);
  const int y0 = static_cast<int>(y0f), x0 = static_cast<int>(x0f);
  const float ly = y - y0f, lx = x - x0f;
  const float hy = 1.0f - ly, hx = 1.0f - lx;
  const bool y0_in = y0 >= 0, y1_in = y0 + 1 < h;  // y0 <= h-1 holds because y < h
  const bool x0_in = x0 >= 0, x1_in = x0 + 1 < w;
  s.w[0] = (y0_in && x0_in) ? hy * hx * scale : 0.0f;
  s.w[1] = (y0_in && x1_in) ? hy * lx * scale : 0.0f;
  s.w[2] = (y1_in && x0_in) ? ly * hx * scale : 0.0f;
  s.w[3] = (y1_in && x1_in) ? ly * lx * scale : 0.0f;
  s.idx[0] = (y0_in && x0_in) ? y0 * w + x0 : 0;
  s.idx[1] = (y0_in && x1_in) ? y0 * w + x0 + 1 : 0;
  s.idx[2] = (y1_in && x0_in) ? (y0 + 1) * w + x0 : 0;
  s.idx[3] = (y1_in && x1_in) ? (y0 + 1) * w + x0 + 1 : 0;
  return s;
}

// The same sample as a 2 x 2 window that always lies inside an image of h, w >= 2: rows y, y + 1, columns x, x + 1
// with y in [0, h - 2], x in [0, w - 2], weights w[0..3] for (y, x), (y, x + 1), (y + 1, x), (y + 1, x + 1). A
// corner of bilinear_sample inside the image lands on the window corner at its position with the bit-identical
// weight (the same (row weight * column weight) * scale); window corners that are not a sample corner, and every
// corner of a position bilinear_sample reads as 0 (outside, NaN), weigh 0. Why: one address and fixed neighbours
// (+1 column, +w row) instead of four checked indices -- a gather needs half the address arithmetic and no branch.
struct WindowSample {
  int y, x;
  float w[4];
};

RRSR_HD WindowSample window_sample(float y, float x, int h, int w, float scale) {
  const bool inside = y > -1.0f && y < static_cast<float>(h) && x > -1.0f && x < static_cast<float>(w);
  // outside (or NaN): a finite stand-in position, so no weight below is NaN, and scale 0 zeroes them
  const float ys = inside ? y : 0.0f, xs = inside ? x : 0.0f, s = inside ? scale : 0.0f;
  const float y0f = floorf(ys), x0f = floorf(xs);
  const int y0 = static_cast<int>(y0f), x0 = static_cast<int>(x0f);  // in [-1, h - 1] x [-1, w - 1]
  const float ly = ys - y0f, lx = xs - x0f;
  const float hy = 1.0f - ly, hx = 1.0f - lx;
  WindowSample ws;
  ws.y = y0 < 0 ? 0 : (y0 > h - 2 ? h - 2 : y0);
  ws.x = x0 < 0 ? 0 : (x0 > w - 2 ? w - 2 : x0);
  // row ws.y holds y0 (weight hy) or, where y0 = -1, y0 + 1 (ly); row ws.y + 1 holds y0 + 1 or, where y0 = h - 1,
  // y0 itself
  const float wy0 = y0 == ws.y ? hy : (y0 < ws.y ? ly : 0.0f);
  const float wy1 = y0 == ws.y ? ly : (y0 < ws.y ? 0.0f : hy);
  const float wx0 = x0 == ws.x ? hx : (x0 < ws.x ? lx : 0.0f);
  const float wx1 = x0 == ws.x ? lx : (x0 < ws.x ? 0.0f : hx);
  ws.w[0] = wy0 * wx0 * s;
  ws.w[1] = wy0 * wx1 * s;
  ws.w[2] = wy1 * wx0 * s;
  ws.w[3] = wy1 * wx1 * s;
  return ws;
}

// Channel of the offset tensor holding component `comp` (0 = dy, 1 = dx) of tap `tap` in deformable group `og`:
// group-major, then tap (k = i*kw + j), then (dy, dx) -- the ONNX DeformConv layout.
RRSR_HD int offset_channel(int og, int tap, int taps, int comp) { return (og * taps + tap) * 2 + comp; }

// Channel of the mask tensor for tap `tap` of deformable group `og`.
RRSR_HD int mask_channel(int og, int tap, int taps) { return og * taps + tap; }

// ---------------------------------------------------------------------------------------------------------------
// FP16 as raw IEEE binary16 bits (CPU side; CUDA code uses cuda_fp16.h intrinsics on __half instead).

RRSR_HD float bits_to_float(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#else
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
#endif
}

RRSR_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
#endif
}

RRSR_HD float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp == 0) {                                                              // zero / subnormal: mant * 2^-24
    const float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

// Round to nearest even, overflow to inf, NaN kept NaN.
RRSR_HD uint16_t float_to_half_bits(float f) {
  uint32_t x = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  x &= 0x7fffffffu;
  if (x >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0u));
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (x < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5f puts the half's subnormal ulp (2^-24) at the float's ulp,
    // so the FPU does the round-to-nearest-even for us.
    const float r = bits_to_float(x) + 0.5f;
    return static_cast<uint16_t>(sign | (float_to_bits(r) - 0x3f000000u));
  }
  const uint32_t odd = (x >> 13) & 1u;
  x += 0xc8000fffu + odd;  // rebias exponent by (15 - 127) << 23 and round half to even
  return static_cast<uint16_t>(sign | (x >> 13));
}

// ---------------------------------------------------------------------------------------------------------------
// Small activations used by the RAS gate.

RRSR_HD float sigmoidf_(float v) { return 1.0f / (1.0f + expf(-v)); }

RRSR_HD int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

}  // namespace rrsr
