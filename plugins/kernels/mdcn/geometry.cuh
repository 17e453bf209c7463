// The MDCN sizes both CUDA kernels (mdcn.cu's SIMT problem, mdcn_tc.cuh's tensor-core problem) work with, derived
// once from the launcher's Shape. int: check_shape() bounds the planes below 2^31 px, and products that can exceed
// it use int64_t.
#pragma once

#include <cstdint>

#include "launch.h"

namespace rrsr {
namespace mdcn {

struct Geometry {
  int c, h, w, c_out, kw, taps, h_out, w_out;
  int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w;
  int group, offset_group, cin_g, cout_g, ch_per_og;

  __host__ __device__ int64_t p_count() const { return static_cast<int64_t>(h_out) * w_out; }
};

inline Geometry make_geometry(const Shape& s) {
  Geometry g;
  g.c = static_cast<int>(s.c);
  g.h = static_cast<int>(s.h);
  g.w = static_cast<int>(s.w);
  g.c_out = static_cast<int>(s.c_out);
  g.kw = static_cast<int>(s.kw);
  g.taps = static_cast<int>(s.kh * s.kw);
  g.h_out = static_cast<int>(s.h_out);
  g.w_out = static_cast<int>(s.w_out);
  g.stride_h = static_cast<int>(s.stride_h);
  g.stride_w = static_cast<int>(s.stride_w);
  g.pad_top = static_cast<int>(s.pad_top);
  g.pad_left = static_cast<int>(s.pad_left);
  g.dil_h = static_cast<int>(s.dil_h);
  g.dil_w = static_cast<int>(s.dil_w);
  g.group = static_cast<int>(s.group);
  g.offset_group = static_cast<int>(s.offset_group);
  g.cin_g = static_cast<int>(s.c / s.group);
  g.cout_g = static_cast<int>(s.c_out / s.group);
  g.ch_per_og = static_cast<int>(s.c / s.offset_group);
  return g;
}

}  // namespace mdcn
}  // namespace rrsr
