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
  if (c.min_blocks == 0) return true;
  // the one register cap instantiated (launch_gemm_smem): the two-stage 256x64 tile at 2 blocks per SM (126
  // registers)
  return c.bm == 256 && c.min_blocks == 2;
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

// cfg with a TileChoice applied (forward_cuda's tuning hook; the split count is the launcher's, as it depends on
// the workspace): its variant first (with_variant), then the fields it pins. A pinned tile or pipeline depth runs
// with that kernel's own register rule unless min_blocks is pinned too.
inline Config with_tile(Config cfg, const TileChoice& t, bool slab_room) {
  cfg = with_variant(cfg, t.variant, slab_room);
  if (t.bm || t.bn || t.regb) {
    cfg.regb = t.regb != 0;
    cfg.bm = t.bm;
    cfg.bn = t.bn;
    cfg.min_blocks = 0;
  }
  if (t.stages) {
    if (t.stages != cfg.stages) cfg.min_blocks = 0;
    cfg.stages = t.stages;
  }
  if (t.min_blocks) cfg.min_blocks = t.min_blocks;
  return cfg;
}

}  // namespace vec8
}  // namespace mdcn
}  // namespace rrsr
