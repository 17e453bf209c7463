// Which octet-kernel configurations exist, and launch.h's Variants applied to the launcher's own choice.
#pragma once

#include "launch.h"
#include "mdcn_vec8.cuh"
#include "mdcn_vec8_regb.cuh"
#include "mdcn_vec8_slab.cuh"

namespace rrsr {
namespace mdcn {
namespace vec8 {

// Whether cfg names a kernel that launch_gemm_smem, regb::launch_gemm or slab::launch has: the shared-memory
// kernel's tiles with two or three stages (plus its 256x64 two-stage tile capped for two blocks per SM), the
// register-B variant's tiles with two stages, the column-slab variant's GEMM on the shared-memory kernel's tiles.
inline bool has_kernel(const Config& c) {
  if (c.regb) return !c.slab && regb::supported_tile(c.bm, c.bn) && c.stages == 2 && c.min_blocks == 0;
  if (c.slab) return supported_tile(c.bm, c.bn) && c.min_blocks == 0;
  if (!supported_tile(c.bm, c.bn) || (c.stages != 2 && c.stages != 3)) return false;
  return c.min_blocks == 0 || (c.min_blocks == 2 && c.stages == 2 && c.bm == 256 && c.bn == 64);
}

// cfg with `v` applied where it applies (launch.h's Variant): the three-stage pipeline on the shared-memory kernel
// with cfg's tile (its own register rule); the register-B variant (its 64 x 128 tile) where cfg has 64-row tiles;
// the two-blocks-per-SM cap on the two-stage 256 x 64 tile (pick_config's own choice there now); the column slab
// (its GEMM on cfg's tile) where the workspace holds it (`slab_room`).
inline Config with_variant(Config cfg, Variant v, bool slab_room) {
  switch (v) {
    case Variant::kThreeStage:
      if (!cfg.regb) {
        cfg.stages = 3;
        cfg.min_blocks = 0;
      }
      break;
    case Variant::kRegisterB:
      if (cfg.bm == regb::kBM && !cfg.regb && cfg.stages == 2) {
        cfg.regb = true;
        cfg.bn = regb::Tiling<2>::kBN;
      }
      break;
    case Variant::kTwoBlocksPerSm:
      if (!cfg.regb && cfg.bm == 256 && cfg.bn == 64 && cfg.stages == 2) cfg.min_blocks = 2;
      break;
    case Variant::kColumnSlab:
      if (slab_room && !cfg.regb) {
        cfg.slab = true;
        cfg.min_blocks = 0;
      }
      break;
    case Variant::kDefault: break;
  }
  return cfg;
}

}  // namespace vec8
}  // namespace mdcn
}  // namespace rrsr
