// Host-side check of librrsr_trt_plugins_dynamic.so without TensorRT's library and without a GPU: dlopen the
// plugin library, hand it a logger finder, take its creators and drive every IPluginV3 method that needs no device
// (fields, validation, round trip, types, formats, symbolic output shapes through a stand-in IExprBuilder,
// configurePlugin/onShapeChange, workspace, clone/attachToContext, enqueue with an empty batch).
//
//   rrsr_trt_plugin_check <librrsr_trt_plugins_dynamic.so>
//
// Prints one JSON line describing the creators ({"creators": [...]}, compared with plugins/ops/*.json by
// tests/plugins/test_plugin_tensorrt.py), then "ok <check>" / "FAIL <check>: ..." lines; exit status = failures.
#include <NvInferRuntime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "trt_test_util.h"  // logger/finder/recorder, stand-in IExprBuilder, descriptors, fields, library loading

using namespace nvinfer1;
using namespace rrsr_trt_test;

namespace {

int g_failures = 0;
void check(bool ok, const std::string& name, const std::string& detail = "") {
  if (ok) {
    std::printf("ok %s\n", name.c_str());
  } else {
    ++g_failures;
    std::printf("FAIL %s%s%s\n", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  }
}

CaptureLogger g_logger;
Finder g_finder(&g_logger);

std::string json_escape(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}

// ---- MDCN
void check_mdcn(IPluginCreatorV3One* c) {
  const std::string op = "RrsrModulatedDeformConv";
  // Defaults when no field is given.
  IPluginV3* p = c->createPlugin("m0", nullptr, TensorRTPhase::kBUILD);
  check(p != nullptr, "mdcn.create_without_fields", g_logger.last_error());
  if (!p) return;
  bool ok = false;
  auto def = read_fc(cap<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
  check(ok && fc_str(def) == "strides=[1,1] pads=[0,0,0,0] dilations=[1,1] group=[1] offset_group=[1] ",
        "mdcn.defaults_serialized", fc_str(def));
  destroy(p);

  // Good fields (kINT32 as the ONNX parser passes them, one as kINT64) round-trip through getFieldsToSerialize.
  Field og{"offset_group", PluginFieldType::kINT64, {}, {2}, {}};
  Fc good({i32("strides", {2, 1}), i32("pads", {1, 2, 3, 4}), i32("dilations", {1, 2}), i32("group", {2}), og});
  p = c->createPlugin("m1", &good.fc, TensorRTPhase::kBUILD);
  check(p != nullptr, "mdcn.create_good_fields", g_logger.last_error());
  if (!p) return;
  auto* core = cap<IPluginV3OneCore>(p, PluginCapabilityType::kCORE);
  auto* build = cap<IPluginV3OneBuild>(p, PluginCapabilityType::kBUILD);
  auto* rt = cap<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME);
  check(core && build && rt, "mdcn.capabilities");
  if (!(core && build && rt)) return;
  check(op == core->getPluginName() && std::string(core->getPluginVersion()) == c->getPluginVersion() &&
            std::string(core->getPluginNamespace()) == c->getPluginNamespace(),
        "mdcn.core_names");
  check(std::string(core->getInterfaceInfo().kind) == "PLUGIN_V3ONE_CORE" &&
            std::string(build->getInterfaceInfo().kind) == "PLUGIN_V3ONE_BUILD" &&
            std::string(rt->getInterfaceInfo().kind) == "PLUGIN_V3ONE_RUNTIME" &&
            std::string(p->getInterfaceInfo().kind) == "PLUGIN",
        "mdcn.interface_kinds");
  auto ser = read_fc(rt->getFieldsToSerialize(), &ok);
  const std::string want = "strides=[2,1] pads=[1,2,3,4] dilations=[1,2] group=[2] offset_group=[2] ";
  check(ok && fc_str(ser) == want, "mdcn.serialized_fields", fc_str(ser));
  IPluginV3* p2 = c->createPlugin("m1", rt->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
  check(p2 != nullptr, "mdcn.create_from_serialized", g_logger.last_error());
  if (p2) {
    auto ser2 = read_fc(cap<IPluginV3OneRuntime>(p2, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
    check(ok && fc_str(ser2) == want, "mdcn.round_trip", fc_str(ser2));
    destroy(p2);
  }
  // clone keeps the fields
  IPluginV3* cl = p->clone();
  check(cl != nullptr, "mdcn.clone");
  if (cl) {
    auto s3 = read_fc(cap<IPluginV3OneRuntime>(cl, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
    check(ok && fc_str(s3) == want, "mdcn.clone_fields", fc_str(s3));
    destroy(cl);
  }

  // Types and formats. Inputs X, W, offset, B, mask; output Y.
  DataType outT = DataType::kFLOAT;
  const DataType inT[] = {DataType::kHALF, DataType::kHALF, DataType::kFLOAT, DataType::kHALF, DataType::kFLOAT};
  check(build->getNbOutputs() == 1 && build->getOutputDataTypes(&outT, 1, inT, 5) == 0 && outT == DataType::kHALF,
        "mdcn.output_type_is_x_type");
  const DataType badT[] = {DataType::kINT8, DataType::kHALF, DataType::kFLOAT};
  check(build->getOutputDataTypes(&outT, 1, badT, 3) != 0, "mdcn.output_type_rejects_int8");

  // X [2, 8, 10, 12], W [6, 4, 3, 3] (group 2), strides (2, 1), pads (1, 2, 3, 4), dilations (1, 2), og 2
  // H_out = (10 + 1 + 3 - 3) / 2 + 1 = 6; W_out = (12 + 2 + 4 - 5) / 1 + 1 = 14
  const int64_t n = 2, cc = 8, h = 10, w = 12, co = 6, ho = 6, wo = 14, taps = 2 * 9;
  auto io = [&](DataType tx, DataType toff, DataType tw, DataType tb, DataType tm, DataType ty,
                TensorFormat fmt = TensorFormat::kLINEAR) {
    return std::vector<DynamicPluginTensorDesc>{dyn(dims({n, cc, h, w}), tx, fmt), dyn(dims({co, cc / 2, 3, 3}), tw),
                                                dyn(dims({n, 2 * taps, ho, wo}), toff), dyn(dims({co}), tb),
                                                dyn(dims({n, taps, ho, wo}), tm), dyn(dims({n, co, ho, wo}), ty)};
  };
  auto all_ok = [&](std::vector<DynamicPluginTensorDesc> v, int nb_in) {
    for (int pos = 0; pos < nb_in + 1; ++pos)
      if (!build->supportsFormatCombination(pos, v.data(), nb_in, 1)) return pos;
    return -1;
  };
  const DataType F = DataType::kFLOAT, H = DataType::kHALF;
  check(all_ok(io(F, F, F, F, F, F), 5) == -1, "mdcn.formats.fp32");
  check(all_ok(io(H, H, H, H, H, H), 5) == -1, "mdcn.formats.fp16");
  check(all_ok(io(H, F, H, H, F, H), 5) == -1, "mdcn.formats.fp16_features_fp32_offsets");
  check(all_ok(io(F, H, F, F, H, F), 5) == -1, "mdcn.formats.fp32_features_fp16_offsets");
  check(all_ok(io(H, F, F, H, F, H), 5) == 1, "mdcn.formats.rejects_w_type_mismatch");
  check(all_ok(io(H, F, H, F, F, H), 5) == 3, "mdcn.formats.rejects_b_type_mismatch");
  check(all_ok(io(H, F, H, H, H, H), 5) == 4, "mdcn.formats.rejects_mask_offset_mismatch");
  check(all_ok(io(H, F, H, H, F, F), 5) == 5, "mdcn.formats.rejects_y_type_mismatch");
  check(all_ok(io(DataType::kINT8, F, F, F, F, F), 5) == 0, "mdcn.formats.rejects_int8");
  check(all_ok(io(DataType::kBF16, F, F, F, F, F), 5) == 0, "mdcn.formats.rejects_bf16");
  check(all_ok(io(F, F, F, F, F, F, TensorFormat::kHWC), 5) == 0, "mdcn.formats.rejects_non_linear");
  {  // 4 inputs: mask without B (told apart by rank), B without mask
    auto v = io(H, F, H, H, F, H);
    std::vector<DynamicPluginTensorDesc> mask_only{v[0], v[1], v[2], v[4], v[5]};
    std::vector<DynamicPluginTensorDesc> b_only{v[0], v[1], v[2], v[3], v[5]};
    check(all_ok(mask_only, 4) == -1, "mdcn.formats.mask_without_b");
    check(all_ok(b_only, 4) == -1, "mdcn.formats.b_without_mask");
    std::vector<DynamicPluginTensorDesc> none{v[0], v[1], v[2], v[5]};
    check(all_ok(none, 3) == -1, "mdcn.formats.no_b_no_mask");
  }

  // Symbolic output shape through the expression builder.
  {
    Builder eb;
    DimsExprs in[3];
    const int64_t shapes[3][4] = {{n, cc, h, w}, {co, cc / 2, 3, 3}, {n, 2 * taps, ho, wo}};
    for (int i = 0; i < 3; ++i) {
      in[i].nbDims = 4;
      for (int k = 0; k < 4; ++k) in[i].d[k] = eb.constant(shapes[i][k]);
    }
    DimsExprs out[1]{};
    const int32_t rc = build->getOutputShapes(in, 3, nullptr, 0, out, 1, eb);
    bool good_shape = rc == 0 && out[0].nbDims == 4;
    std::string got;
    for (int k = 0; good_shape && k < 4; ++k) got += std::to_string(out[0].d[k]->getConstantValue()) + " ";
    good_shape = good_shape && got == std::to_string(n) + " " + std::to_string(co) + " " + std::to_string(ho) + " " +
                                          std::to_string(wo) + " ";
    check(good_shape, "mdcn.output_shapes_symbolic", got);
  }

  // configurePlugin / onShapeChange validate shapes.
  auto v = io(H, F, H, H, F, H);
  check(build->configurePlugin(v.data(), 5, &v[5], 1) == 0, "mdcn.configure_good", g_logger.last_error());
  {
    auto bad = v;
    bad[2] = dyn(dims({n, 2 * taps - 2, ho, wo}), F);
    check(build->configurePlugin(bad.data(), 5, &bad[5], 1) != 0 &&
              g_logger.last_error().find("'offset'") != std::string::npos &&
              g_logger.last_error().find(op) != std::string::npos,
          "mdcn.configure_rejects_bad_offset", g_logger.last_error());
    auto wild = v;  // dynamic N, H, W: -1 dims are skipped
    wild[0].desc.dims = dims({-1, cc, -1, -1});
    wild[2].desc.dims = dims({-1, 2 * taps, -1, -1});
    wild[4].desc.dims = dims({-1, taps, -1, -1});
    check(build->configurePlugin(wild.data(), 5, &wild[5], 1) == 0, "mdcn.configure_wildcards",
          g_logger.last_error());
  }
  std::vector<PluginTensorDesc> pd;
  for (auto& d : v) pd.push_back(d.desc);
  check(rt->onShapeChange(pd.data(), 5, &pd[5], 1) == 0, "mdcn.on_shape_change_good", g_logger.last_error());
  check(build->getWorkspaceSize(v.data(), 5, &v[5], 1) == 0, "mdcn.no_workspace_below_8_channels_per_group");
  {
    // RRSR's stage: 64 channels in 8 offset groups. FP16 features take the octet kernel and its scratch (the octet
    // copy of X at the profile's max shape); FP32 features take none. A profile whose min shape is small enough to
    // split K also reserves the partial sums, so it asks for more than its max shape alone.
    Fc rrsr({i32("pads", {1, 1, 1, 1}), i32("offset_group", {8})});
    IPluginV3* q = c->createPlugin("m_rrsr", &rrsr.fc, TensorRTPhase::kBUILD);
    auto* qb = q ? cap<IPluginV3OneBuild>(q, PluginCapabilityType::kBUILD) : nullptr;
    check(qb != nullptr, "mdcn.create_rrsr_like", g_logger.last_error());
    if (qb) {
      auto stage = [&](DataType t, int64_t lo_hw, int64_t hi_hw) {
        auto d4 = [&](int64_t ch, int64_t s, DataType ty) {
          DynamicPluginTensorDesc x = dyn(dims({1, ch, s, s}), ty);
          x.min = dims({1, ch, lo_hw, lo_hw});
          x.max = dims({1, ch, hi_hw, hi_hw});
          return x;
        };
        std::vector<DynamicPluginTensorDesc> io{d4(64, hi_hw, t), dyn(dims({64, 64, 3, 3}), t),
                                                 d4(144, hi_hw, DataType::kFLOAT), dyn(dims({64}), t),
                                                 d4(72, hi_hw, DataType::kFLOAT), d4(64, hi_hw, t)};
        return qb->getWorkspaceSize(io.data(), 5, &io[5], 1);
      };
      // without the custom tactics: the octet copy (+ weights); the default policy adds the column-slab tactic's
      // slab (at most 32 MiB)
      const size_t octets = 64 * 256 * 256 * 2;  // X at the max shape, FP16
      setenv("RRSR_TRT_MDCN_TACTICS", "none", 1);
      const size_t big = stage(DataType::kHALF, 256, 256), ranged = stage(DataType::kHALF, 16, 256);
      check(big >= octets && big < octets + (1u << 20), "mdcn.fp16_workspace_octet_copy", std::to_string(big));
      check(ranged > big, "mdcn.fp16_workspace_covers_split_min", std::to_string(ranged));
      check(stage(DataType::kFLOAT, 16, 256) == 0, "mdcn.fp32_no_workspace");
      unsetenv("RRSR_TRT_MDCN_TACTICS");
      const size_t with_tactics = stage(DataType::kHALF, 256, 256);
      check(with_tactics > big && with_tactics <= big + (size_t{32} << 20) + 1024, "mdcn.fp16_workspace_slab_tactic",
            std::to_string(with_tactics));

      // Custom tactics after configurePlugin: the kernel variants that can differ from the default for these
      // channels and types (mdcn::Variant): the three-stage pipeline for every FP16 octet-kernel stage, the
      // register-B variant for 64 output channels, the column slab for every one; none for FP32.
      auto tactics = [&](DataType t, int64_t ch) {
        std::vector<DynamicPluginTensorDesc> io{dyn(dims({1, ch, 32, 32}), t), dyn(dims({ch, ch, 3, 3}), t),
                                                 dyn(dims({1, 144, 32, 32}), DataType::kFLOAT), dyn(dims({ch}), t),
                                                 dyn(dims({1, 72, 32, 32}), DataType::kFLOAT),
                                                 dyn(dims({1, ch, 32, 32}), t)};
        if (qb->configurePlugin(io.data(), 5, &io[5], 1) != 0) return "configure failed: " + g_logger.last_error();
        const int32_t nb = qb->getNbTactics();
        std::vector<int32_t> v(static_cast<size_t>(nb > 0 ? nb : 0));
        if (nb > 0 && qb->getValidTactics(v.data(), nb) != 0) return "getValidTactics failed: " + g_logger.last_error();
        std::string got;
        for (int32_t x : v) got += std::to_string(x) + " ";
        return got;
      };
      // by default only the GPU-verified variants are offered (mdcn::variant_verified: all of them, since an H200 run)
      unsetenv("RRSR_TRT_MDCN_TACTICS");
      std::string got = tactics(DataType::kHALF, 64);
      check(got == "1 2 4 ", "mdcn.tactics_default_verified_only", got);
      setenv("RRSR_TRT_MDCN_TACTICS", "none", 1);
      check((got = tactics(DataType::kHALF, 64)) == "", "mdcn.tactics_none", got);
      setenv("RRSR_TRT_MDCN_TACTICS", "all", 1);
      check((got = tactics(DataType::kHALF, 64)) == "1 2 4 ", "mdcn.tactics_fp16_64_channels", got);
      check((got = tactics(DataType::kHALF, 128)) == "1 4 ", "mdcn.tactics_fp16_128_channels", got);
      check((got = tactics(DataType::kHALF, 256)) == "1 4 ", "mdcn.tactics_fp16_256_channels", got);
      {
        // with the column-slab tactic offered the workspace holds the slab (32 x 32 pixels x 18 chunks x 32 halves
        // at 64 channels); a profile too large for one slab still offers it, with a band of the slab's limit
        auto io64 = [&](int64_t sz) {
          return std::vector<DynamicPluginTensorDesc>{
              dyn(dims({1, 64, sz, sz}), DataType::kHALF), dyn(dims({64, 64, 3, 3}), DataType::kHALF),
              dyn(dims({1, 144, sz, sz}), DataType::kFLOAT), dyn(dims({64}), DataType::kHALF),
              dyn(dims({1, 72, sz, sz}), DataType::kFLOAT), dyn(dims({1, 64, sz, sz}), DataType::kHALF)};
        };
        auto io = io64(32);
        tactics(DataType::kHALF, 64);
        const size_t with_slab = qb->getWorkspaceSize(io.data(), 5, &io[5], 1);
        setenv("RRSR_TRT_MDCN_TACTICS", "none", 1);
        tactics(DataType::kHALF, 64);
        const size_t without = qb->getWorkspaceSize(io.data(), 5, &io[5], 1);
        check(with_slab >= without + 32 * 32 * 18 * 32 * 2 && with_slab < without + 32 * 32 * 18 * 32 * 2 + 1024,
              "mdcn.workspace_holds_the_slab_when_offered", std::to_string(with_slab) + " vs " + std::to_string(without));
        setenv("RRSR_TRT_MDCN_TACTICS", "all", 1);
        // the same from a plugin that was never configured (TensorRT may ask another object than the configured one)
        IPluginV3* fresh = c->createPlugin("m_fresh", &rrsr.fc, TensorRTPhase::kBUILD);
        auto* fb = fresh ? cap<IPluginV3OneBuild>(fresh, PluginCapabilityType::kBUILD) : nullptr;
        check(fb != nullptr && fb->getWorkspaceSize(io.data(), 5, &io[5], 1) == with_slab,
              "mdcn.workspace_slab_without_configure", g_logger.last_error());
        if (fresh) destroy(fresh);
        auto big = io64(256);  // 256 x 256 x 18 x 32 halves: 72 MiB, past the slab's limit
        got.clear();
        if (qb->configurePlugin(big.data(), 5, &big[5], 1) == 0) {
          std::vector<int32_t> v(static_cast<size_t>(qb->getNbTactics()));
          if (!v.empty()) qb->getValidTactics(v.data(), static_cast<int32_t>(v.size()));
          for (int32_t x : v) got += std::to_string(x) + " ";
        }
        check(got == "1 2 4 ", "mdcn.tactics_slab_in_bands_past_its_limit", got);
        const size_t big_slab = qb->getWorkspaceSize(big.data(), 5, &big[5], 1);
        setenv("RRSR_TRT_MDCN_TACTICS", "none", 1);
        tactics(DataType::kHALF, 64);
        const size_t big_plain = qb->getWorkspaceSize(big.data(), 5, &big[5], 1);
        setenv("RRSR_TRT_MDCN_TACTICS", "all", 1);
        check(big_slab > big_plain && big_slab <= big_plain + (size_t{32} << 20) + 1024,
              "mdcn.workspace_slab_bounded", std::to_string(big_slab) + " vs " + std::to_string(big_plain));
      }
      check((got = tactics(DataType::kFLOAT, 64)) == "", "mdcn.tactics_none_for_fp32", got);
      setenv("RRSR_TRT_MDCN_TACTICS", "bogus", 1);
      check((got = tactics(DataType::kHALF, 64)) == "1 2 4 " && g_logger.has(ILogger::Severity::kWARNING, "bogus"),
            "mdcn.tactics_bad_policy_warns", got);  // and falls back to the verified ones
      setenv("RRSR_TRT_MDCN_TACTICS", "all", 1);
      tactics(DataType::kHALF, 64);  // leaves 3 tactics configured for the count check below
      unsetenv("RRSR_TRT_MDCN_TACTICS");
      std::vector<int32_t> one(1);
      check(qb->getValidTactics(one.data(), 1) != 0 && g_logger.last_error().find("getValidTactics") != std::string::npos,
            "mdcn.tactics_count_mismatch_refused", g_logger.last_error());
      const char* id = qb->getTimingCacheID();
      check(id != nullptr && std::string(id) == "strides=1,1;pads=1,1,1,1;dilations=1,1;group=1;offset_group=8",
            "mdcn.timing_cache_id_is_the_attributes", id ? id : "(null)");
      auto* qr = cap<IPluginV3OneRuntime>(q, PluginCapabilityType::kRUNTIME);
      check(qr != nullptr && qr->setTactic(0) == 0 && qr->setTactic(2) == 0 && qr->setTactic(4) == 0,
            "mdcn.set_tactic_variants", g_logger.last_error());
      check(qr != nullptr && qr->setTactic(7) != 0 && g_logger.last_error().find("setTactic") != std::string::npos &&
                g_logger.last_error().find(op) != std::string::npos,
            "mdcn.set_tactic_rejects_unknown", g_logger.last_error());
    }
    if (q) destroy(q);
  }

  // attachToContext clones and sends later errors to the context's recorder as well.
  Recorder rec;
  ResourceContext ctx(&rec);
  IPluginV3* att = rt->attachToContext(&ctx);
  check(att != nullptr && att != p, "mdcn.attach_to_context_clones");
  if (att) {
    auto* art = cap<IPluginV3OneRuntime>(att, PluginCapabilityType::kRUNTIME);
    auto bad = pd;
    bad[1].dims = dims({co, cc, 3, 3});  // C / group mismatch
    check(art->onShapeChange(bad.data(), 5, &bad[5], 1) != 0 && rec.getNbErrors() == 1 &&
              std::string(rec.getErrorDesc(0)).find("'W'") != std::string::npos,
          "mdcn.attached_errors_reach_recorder", rec.errs.empty() ? "" : rec.errs[0].second);
    // empty batch: enqueue returns before touching the device
    auto empty = pd;
    empty[0].dims.d[0] = 0;
    empty[2].dims.d[0] = 0;
    empty[4].dims.d[0] = 0;
    empty[5].dims.d[0] = 0;
    check(art->onShapeChange(empty.data(), 5, &empty[5], 1) == 0, "mdcn.on_shape_change_empty_batch",
          g_logger.last_error());
    const void* ins[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    void* outs[1] = {nullptr};
    check(art->enqueue(empty.data(), &empty[5], ins, outs, nullptr, nullptr) == 0, "mdcn.enqueue_empty_batch");
    destroy(att);
  }
  IPluginV3* fresh = c->createPlugin("m2", &good.fc, TensorRTPhase::kRUNTIME);
  if (fresh) {
    const void* ins[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
    void* outs[1] = {nullptr};
    check(cap<IPluginV3OneRuntime>(fresh, PluginCapabilityType::kRUNTIME)
                  ->enqueue(pd.data(), &pd[5], ins, outs, nullptr, nullptr) != 0,
          "mdcn.enqueue_before_shapes_fails_cleanly");
    destroy(fresh);
  }
  destroy(p);

  // Bad fields: createPlugin returns nullptr and logs an error naming the op and the field.
  struct Bad {
    const char* what;
    std::vector<Field> fields;
    const char* field;
  };
  Field f32{"group", PluginFieldType::kFLOAT32, {}, {}, {1.0f}};
  Field chr{"strides", PluginFieldType::kCHAR, {1, 1}, {}, {}};
  Field nul = i32("pads", {0, 0, 0, 0});
  nul.null_data = true;
  Field big{"dilations", PluginFieldType::kINT64, {}, {1, int64_t{1} << 40}, {}};
  const std::vector<Bad> bads = {
      {"wrong_type_float", {f32}, "group"},
      {"wrong_type_char", {chr}, "strides"},
      {"wrong_length", {i32("strides", {1, 1, 1})}, "strides"},
      {"wrong_length_scalar", {i32("offset_group", {1, 1})}, "offset_group"},
      {"below_min_stride", {i32("strides", {0, 1})}, "strides"},
      {"below_min_pad", {i32("pads", {0, -1, 0, 0})}, "pads"},
      {"below_min_group", {i32("group", {0})}, "group"},
      {"below_min_offset_group", {i32("offset_group", {-3})}, "offset_group"},
      {"null_data", {nul}, "pads"},
      {"over_int32", {big}, "dilations"},
      {"duplicate", {i32("group", {1}), i32("group", {2})}, "group"},
  };
  for (const Bad& b : bads) {
    Fc fc(b.fields);
    g_logger.msgs.clear();
    IPluginV3* q = c->createPlugin("bad", &fc.fc, TensorRTPhase::kBUILD);
    const std::string e = g_logger.last_error();
    check(q == nullptr && e.find(op) != std::string::npos && e.find(std::string("'") + b.field + "'") != std::string::npos,
          std::string("mdcn.bad_fields.") + b.what, e);
    if (q) destroy(q);
  }
  {
    PluginFieldCollection broken{3, nullptr};
    check(c->createPlugin("bad", &broken, TensorRTPhase::kBUILD) == nullptr, "mdcn.bad_fields.no_field_array");
  }
  {  // unknown fields and the registry keys are ignored (a warning for unknown names)
    Field ver{"plugin_version", PluginFieldType::kCHAR, {}, {}, {}};
    Fc fc({i32("not_an_attribute", {3}), ver});
    fc.pf[1].data = "1";
    fc.pf[1].length = 2;
    g_logger.msgs.clear();
    IPluginV3* q = c->createPlugin("unk", &fc.fc, TensorRTPhase::kBUILD);
    check(q != nullptr && g_logger.has(ILogger::Severity::kWARNING, "not_an_attribute"),
          "mdcn.unknown_fields_ignored_with_warning", g_logger.last_error());
    if (q) destroy(q);
  }
}

// ---- RAS
void check_ras(IPluginCreatorV3One* c) {
  IPluginV3* p = c->createPlugin("r0", nullptr, TensorRTPhase::kBUILD);
  check(p != nullptr, "ras.create_without_fields", g_logger.last_error());
  if (!p) return;
  auto* build = cap<IPluginV3OneBuild>(p, PluginCapabilityType::kBUILD);
  auto* rt = cap<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME);
  auto* core = cap<IPluginV3OneCore>(p, PluginCapabilityType::kCORE);
  check(build && rt && core && std::string(core->getPluginName()) == "RrsrRefAwareSelection", "ras.capabilities");
  if (!(build && rt && core)) return;
  bool ok = false;
  auto ser = read_fc(rt->getFieldsToSerialize(), &ok);
  check(ok && ser.empty(), "ras.serialized_fields_empty", fc_str(ser));
  IPluginV3* p2 = c->createPlugin("r0", rt->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
  check(p2 != nullptr, "ras.round_trip");
  if (p2) destroy(p2);

  const int64_t n = 2, cx = 4, cr = 6, c2 = cx + cr, h = 5, w = 7, e = 3, co = 8;
  const DataType F = DataType::kFLOAT, H = DataType::kHALF;
  auto io = [&](DataType t, DataType t2, DataType tv) {
    return std::vector<DynamicPluginTensorDesc>{
        dyn(dims({n, cx, h, w}), t),        dyn(dims({n, cr, h, w}), t),       dyn(dims({e, co, c2, 3, 3}), t),
        dyn(dims({e, co}), t),              dyn(dims({e, c2}), t2),            dyn(dims({e}), t2),
        dyn(dims({c2, c2, 1, 1}), t2),      dyn(dims({c2}), t2),               dyn(dims({co, c2, 1, 1}), t2),
        dyn(dims({co}), t2),                dyn(dims({2}), tv),                dyn(dims({n, co, h, w}), t)};
  };
  auto first_bad = [&](std::vector<DynamicPluginTensorDesc> v, int nb_in) {
    if (nb_in == 10) v.erase(v.begin() + 10);
    for (int pos = 0; pos < nb_in + 1; ++pos)
      if (!build->supportsFormatCombination(pos, v.data(), nb_in, 1)) return pos;
    return -1;
  };
  check(first_bad(io(F, F, DataType::kINT64), 11) == -1, "ras.formats.fp32_int64");
  check(first_bad(io(H, H, DataType::kINT32), 11) == -1, "ras.formats.fp16_int32");
  check(first_bad(io(H, F, DataType::kINT64), 11) == -1, "ras.formats.fp16_features_fp32_gates");
  check(first_bad(io(F, H, DataType::kINT32), 10) == -1, "ras.formats.without_valid_size");
  check(first_bad(io(F, F, DataType::kFLOAT), 11) == 10, "ras.formats.rejects_float_valid_size");
  {
    auto v = io(H, F, DataType::kINT64);
    v[2].desc.type = F;
    check(first_bad(v, 11) == 2, "ras.formats.rejects_w_type_mismatch");
    v = io(H, F, DataType::kINT64);
    v[7].desc.type = H;
    check(first_bad(v, 11) == 7, "ras.formats.rejects_gate_type_mismatch");
    v = io(H, F, DataType::kINT64);
    v[11].desc.type = F;
    check(first_bad(v, 11) == 11, "ras.formats.rejects_y_type_mismatch");
  }
  DataType outT = F;
  const DataType inT[11] = {H, H, H, H, F, F, F, F, F, F, DataType::kINT64};
  check(build->getOutputDataTypes(&outT, 1, inT, 11) == 0 && outT == H, "ras.output_type_is_x_type");
  {
    Builder eb;
    auto v = io(F, F, DataType::kINT64);
    DimsExprs in[11];
    for (int i = 0; i < 11; ++i) {
      in[i].nbDims = v[static_cast<size_t>(i)].desc.dims.nbDims;
      for (int k = 0; k < in[i].nbDims; ++k) in[i].d[k] = eb.constant(v[static_cast<size_t>(i)].desc.dims.d[k]);
    }
    DimsExprs out[1]{};
    std::string got;
    const int32_t rc = build->getOutputShapes(in, 11, nullptr, 0, out, 1, eb);
    for (int k = 0; rc == 0 && k < out[0].nbDims; ++k) got += std::to_string(out[0].d[k]->getConstantValue()) + " ";
    check(rc == 0 && got == "2 8 5 7 ", "ras.output_shapes_symbolic", got);
  }
  auto v = io(H, F, DataType::kINT64);
  check(build->configurePlugin(v.data(), 11, &v[11], 1) == 0, "ras.configure_good", g_logger.last_error());
  check(build->getWorkspaceSize(v.data(), 11, &v[11], 1) > 0, "ras.workspace_positive");
  {
    auto bad = v;
    bad[6].desc.dims = dims({c2, c2 - 1, 1, 1});
    check(build->configurePlugin(bad.data(), 11, &bad[11], 1) != 0 &&
              g_logger.last_error().find("'se1_weight'") != std::string::npos,
          "ras.configure_rejects_bad_se1_weight", g_logger.last_error());
    bad = v;
    bad.erase(bad.begin() + 3);  // 10 inputs, but not the valid_size one missing: W/B mix-up
    check(build->configurePlugin(bad.data(), 10, &bad[10], 1) != 0, "ras.configure_rejects_missing_input");
  }
  std::vector<PluginTensorDesc> pd;
  for (auto& d : v) pd.push_back(d.desc);
  check(rt->onShapeChange(pd.data(), 11, &pd[11], 1) == 0, "ras.on_shape_change_good", g_logger.last_error());
  for (int i : {0, 1, 11}) pd[static_cast<size_t>(i)].dims.d[0] = 0;
  check(rt->onShapeChange(pd.data(), 11, &pd[11], 1) == 0, "ras.on_shape_change_empty_batch", g_logger.last_error());
  const void* ins[11] = {};
  void* outs[1] = {nullptr};
  check(rt->enqueue(pd.data(), &pd[11], ins, outs, nullptr, nullptr) == 0, "ras.enqueue_empty_batch");
  {
    Fc fc({i32("anything", {1})});
    IPluginV3* q = c->createPlugin("r1", &fc.fc, TensorRTPhase::kBUILD);
    check(q != nullptr, "ras.unknown_fields_ignored");
    if (q) destroy(q);
  }
  destroy(p);
}

// ---- PatchMatch
void check_patch_match(IPluginCreatorV3One* c) {
  const std::string op = "RrsrPatchMatch";
  IPluginV3* p = c->createPlugin("p0", nullptr, TensorRTPhase::kBUILD);
  check(p != nullptr, "pm.create_without_fields", g_logger.last_error());
  if (!p) return;
  bool ok = false;
  auto def = read_fc(cap<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
  check(ok && fc_str(def) == "patch_size=[3] ", "pm.defaults_serialized", fc_str(def));
  destroy(p);

  // patch_size 2 (as kINT64 once) round-trips through getFieldsToSerialize, clone and a re-created plugin.
  {
    Field k64{"patch_size", PluginFieldType::kINT64, {}, {2}, {}};
    Fc fc64({k64});
    IPluginV3* q = c->createPlugin("p64", &fc64.fc, TensorRTPhase::kBUILD);
    auto s64 = q ? read_fc(cap<IPluginV3OneRuntime>(q, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok)
                 : decltype(def){};
    check(q != nullptr && ok && fc_str(s64) == "patch_size=[2] ", "pm.create_int64_field", fc_str(s64));
    if (q) destroy(q);
  }
  Fc good({i32("patch_size", {2})});
  p = c->createPlugin("p1", &good.fc, TensorRTPhase::kBUILD);
  check(p != nullptr, "pm.create_good_fields", g_logger.last_error());
  if (!p) return;
  auto* core = cap<IPluginV3OneCore>(p, PluginCapabilityType::kCORE);
  auto* build = cap<IPluginV3OneBuild>(p, PluginCapabilityType::kBUILD);
  auto* rt = cap<IPluginV3OneRuntime>(p, PluginCapabilityType::kRUNTIME);
  check(core && build && rt, "pm.capabilities");
  if (!(core && build && rt)) return;
  check(op == core->getPluginName() && std::string(core->getPluginVersion()) == c->getPluginVersion() &&
            std::string(core->getPluginNamespace()) == c->getPluginNamespace(),
        "pm.core_names");
  const std::string want = "patch_size=[2] ";
  auto ser = read_fc(rt->getFieldsToSerialize(), &ok);
  check(ok && fc_str(ser) == want, "pm.serialized_fields", fc_str(ser));
  IPluginV3* p2 = c->createPlugin("p1", rt->getFieldsToSerialize(), TensorRTPhase::kRUNTIME);
  check(p2 != nullptr, "pm.create_from_serialized", g_logger.last_error());
  if (p2) {
    auto ser2 = read_fc(cap<IPluginV3OneRuntime>(p2, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
    check(ok && fc_str(ser2) == want, "pm.round_trip", fc_str(ser2));
    destroy(p2);
  }
  IPluginV3* cl = p->clone();
  check(cl != nullptr, "pm.clone");
  if (cl) {
    auto s3 = read_fc(cap<IPluginV3OneRuntime>(cl, PluginCapabilityType::kRUNTIME)->getFieldsToSerialize(), &ok);
    check(ok && fc_str(s3) == want, "pm.clone_fields", fc_str(s3));
    destroy(cl);
  }

  // Output count and types: index INT32, score FLOAT whatever the feature type.
  const DataType F = DataType::kFLOAT, H = DataType::kHALF, I = DataType::kINT32;
  {
    DataType outT[2] = {H, H};
    const DataType inH[2] = {H, H};
    check(build->getNbOutputs() == 2 && build->getOutputDataTypes(outT, 2, inH, 2) == 0 && outT[0] == I &&
              outT[1] == F,
          "pm.output_types_int32_float");
    const DataType inF[2] = {F, F};
    outT[0] = outT[1] = H;
    check(build->getOutputDataTypes(outT, 2, inF, 2) == 0 && outT[0] == I && outT[1] == F, "pm.output_types_fp32_in");
    check(build->getOutputDataTypes(outT, 1, inF, 2) != 0, "pm.output_types_rejects_one_output");
    const DataType bad[2] = {DataType::kINT8, DataType::kINT8};
    check(build->getOutputDataTypes(outT, 2, bad, 2) != 0 &&
              g_logger.last_error().find("'F_in'") != std::string::npos,
          "pm.output_types_rejects_int8", g_logger.last_error());
  }

  // F_in [2, 4, 6, 7], F_ref [2, 4, 5, 9], k = 2: index/score [2, 5, 6]
  const int64_t n = 2, cc = 4, h = 6, w = 7, hr = 5, wr = 9, hp = 5, wp = 6;
  auto io = [&](DataType tx, DataType tr, DataType ti, DataType ts, TensorFormat fmt = TensorFormat::kLINEAR) {
    return std::vector<DynamicPluginTensorDesc>{dyn(dims({n, cc, h, w}), tx, fmt), dyn(dims({n, cc, hr, wr}), tr),
                                                dyn(dims({n, hp, wp}), ti), dyn(dims({n, hp, wp}), ts)};
  };
  auto first_bad = [&](std::vector<DynamicPluginTensorDesc> v) {
    for (int pos = 0; pos < 4; ++pos)
      if (!build->supportsFormatCombination(pos, v.data(), 2, 2)) return pos;
    return -1;
  };
  check(first_bad(io(F, F, I, F)) == -1, "pm.formats.fp32");
  check(first_bad(io(H, H, I, F)) == -1, "pm.formats.fp16");
  check(first_bad(io(H, F, I, F)) == 1, "pm.formats.rejects_ref_type_mismatch");
  check(first_bad(io(F, F, DataType::kINT64, F)) == 2, "pm.formats.rejects_int64_index");
  check(first_bad(io(F, F, F, F)) == 2, "pm.formats.rejects_float_index");
  check(first_bad(io(H, H, I, H)) == 3, "pm.formats.rejects_half_score");
  check(first_bad(io(DataType::kINT8, DataType::kINT8, I, F)) == 0, "pm.formats.rejects_int8");
  check(first_bad(io(DataType::kBF16, DataType::kBF16, I, F)) == 0, "pm.formats.rejects_bf16");
  check(first_bad(io(F, F, I, F, TensorFormat::kHWC)) == 0, "pm.formats.rejects_non_linear");
  {
    auto v = io(F, F, I, F);
    check(!build->supportsFormatCombination(0, v.data(), 2, 1) && !build->supportsFormatCombination(4, v.data(), 2, 2),
          "pm.formats.rejects_wrong_counts");
  }

  // Symbolic output shapes: [N, H - k + 1, W - k + 1] for both outputs.
  {
    Builder eb;
    auto v = io(F, F, I, F);
    DimsExprs in[2];
    for (int i = 0; i < 2; ++i) {
      in[i].nbDims = 4;
      for (int k = 0; k < 4; ++k) in[i].d[k] = eb.constant(v[static_cast<size_t>(i)].desc.dims.d[k]);
    }
    DimsExprs out[2]{};
    const int32_t rc = build->getOutputShapes(in, 2, nullptr, 0, out, 2, eb);
    std::string got;
    for (int o = 0; rc == 0 && o < 2; ++o) {
      for (int k = 0; k < out[o].nbDims; ++k) got += std::to_string(out[o].d[k]->getConstantValue()) + " ";
      got += "| ";
    }
    check(rc == 0 && got == "2 5 6 | 2 5 6 | ", "pm.output_shapes_symbolic", got);
    DimsExprs one[1]{};
    check(build->getOutputShapes(in, 2, nullptr, 0, one, 1, eb) != 0, "pm.output_shapes_rejects_one_output");
  }

  // configurePlugin / onShapeChange validate shapes with messages naming the op and input.
  auto v = io(H, H, I, F);
  check(build->configurePlugin(v.data(), 2, &v[2], 2) == 0, "pm.configure_good", g_logger.last_error());
  check(build->configurePlugin(v.data(), 2, &v[2], 1) != 0 && g_logger.last_error().find(op) != std::string::npos,
        "pm.configure_rejects_one_output", g_logger.last_error());
  {
    struct BadShape {
      const char* what;
      int idx;
      Dims d;
      const char* needle;
    };
    const std::vector<BadShape> bads = {
        {"rank_in", 0, dims({n, cc, h}), "'F_in'"},
        {"rank_ref", 1, dims({n, cc, hr, wr, 1}), "'F_ref'"},
        {"batch_mismatch", 1, dims({n + 1, cc, hr, wr}), "'F_ref'"},
        {"channel_mismatch", 1, dims({n, cc + 1, hr, wr}), "'F_ref'"},
        {"patch_over_in_h", 0, dims({n, cc, 1, w}), "'F_in'"},
        {"patch_over_ref_w", 1, dims({n, cc, hr, 1}), "'F_ref'"},
    };
    for (const BadShape& b : bads) {
      auto bad = v;
      bad[static_cast<size_t>(b.idx)].desc.dims = b.d;
      g_logger.msgs.clear();
      const int32_t rc = build->configurePlugin(bad.data(), 2, &bad[2], 2);
      const std::string e = g_logger.last_error();
      check(rc != 0 && e.find(op) != std::string::npos && e.find(b.needle) != std::string::npos,
            std::string("pm.configure_rejects_") + b.what, e);
    }
    auto wild = v;  // dynamic N, H, W, Hr, Wr: -1 dims are skipped
    wild[0].desc.dims = dims({-1, cc, -1, -1});
    wild[1].desc.dims = dims({-1, cc, -1, -1});
    wild[2].desc.dims = dims({-1, -1, -1});
    wild[3].desc.dims = dims({-1, -1, -1});
    check(build->configurePlugin(wild.data(), 2, &wild[2], 2) == 0, "pm.configure_wildcards", g_logger.last_error());
  }
  {
    const size_t ws = build->getWorkspaceSize(v.data(), 2, &v[2], 2);
    auto big = v;  // workspace follows the profile's max dims
    big[0].max = dims({n, cc, 2 * h, 2 * w});
    big[1].max = dims({n, cc, 2 * hr, 2 * wr});
    check(ws > 0 && build->getWorkspaceSize(big.data(), 2, &big[2], 2) > ws, "pm.workspace_positive_follows_max",
          std::to_string(ws));
    auto bad = v;
    bad[1].max = dims({n, cc + 1, hr, wr});
    check(build->getWorkspaceSize(bad.data(), 2, &bad[2], 2) == 0, "pm.workspace_zero_for_bad_shapes");
  }
  std::vector<PluginTensorDesc> pd;
  for (auto& d : v) pd.push_back(d.desc);
  check(rt->onShapeChange(pd.data(), 2, &pd[2], 2) == 0, "pm.on_shape_change_good", g_logger.last_error());
  {
    auto bad = pd;
    bad[3].dims = dims({n, hp, wp + 1});
    check(rt->onShapeChange(bad.data(), 2, &bad[2], 2) != 0 &&
              g_logger.last_error().find("'score'") != std::string::npos,
          "pm.on_shape_change_rejects_bad_score_shape", g_logger.last_error());
    bad = pd;
    bad[1].dims = dims({n, cc, 1, wr});
    check(rt->onShapeChange(bad.data(), 2, &bad[2], 2) != 0 &&
              g_logger.last_error().find("'F_ref'") != std::string::npos &&
              g_logger.last_error().find("patch_size") != std::string::npos,
          "pm.on_shape_change_rejects_small_ref", g_logger.last_error());
  }

  Recorder rec;
  ResourceContext ctx(&rec);
  IPluginV3* att = rt->attachToContext(&ctx);
  check(att != nullptr && att != p, "pm.attach_to_context_clones");
  if (att) {
    auto* art = cap<IPluginV3OneRuntime>(att, PluginCapabilityType::kRUNTIME);
    auto bad = pd;
    bad[1].dims = dims({n, cc + 2, hr, wr});
    check(art->onShapeChange(bad.data(), 2, &bad[2], 2) != 0 && rec.getNbErrors() == 1 &&
              std::string(rec.getErrorDesc(0)).find("'F_ref'") != std::string::npos,
          "pm.attached_errors_reach_recorder", rec.errs.empty() ? "" : rec.errs[0].second);
    auto empty = pd;
    for (int i = 0; i < 4; ++i) empty[static_cast<size_t>(i)].dims.d[0] = 0;
    check(art->onShapeChange(empty.data(), 2, &empty[2], 2) == 0, "pm.on_shape_change_empty_batch",
          g_logger.last_error());
    const void* ins[2] = {nullptr, nullptr};
    void* outs[2] = {nullptr, nullptr};
    check(art->enqueue(empty.data(), &empty[2], ins, outs, nullptr, nullptr) == 0, "pm.enqueue_empty_batch");
    auto small = pd;
    small[0].dims = dims({n, cc, 1, w});
    check(art->enqueue(small.data(), &small[2], ins, outs, nullptr, nullptr) != 0, "pm.enqueue_rejects_bad_shapes");
    destroy(att);
  }
  destroy(p);

  // Bad fields: createPlugin returns nullptr and logs an error naming the op and the field.
  struct Bad {
    const char* what;
    std::vector<Field> fields;
  };
  Field f32{"patch_size", PluginFieldType::kFLOAT32, {}, {}, {3.0f}};
  Field nul = i32("patch_size", {3});
  nul.null_data = true;
  Field big{"patch_size", PluginFieldType::kINT64, {}, {int64_t{1} << 40}, {}};
  const std::vector<Bad> bads = {
      {"wrong_type_float", {f32}},
      {"wrong_length", {i32("patch_size", {3, 3})}},
      {"below_min_zero", {i32("patch_size", {0})}},
      {"below_min_negative", {i32("patch_size", {-2})}},
      {"null_data", {nul}},
      {"over_int32", {big}},
      {"duplicate", {i32("patch_size", {3}), i32("patch_size", {5})}},
  };
  for (const Bad& b : bads) {
    Fc fc(b.fields);
    g_logger.msgs.clear();
    IPluginV3* q = c->createPlugin("bad", &fc.fc, TensorRTPhase::kBUILD);
    const std::string e = g_logger.last_error();
    check(q == nullptr && e.find(op) != std::string::npos && e.find("'patch_size'") != std::string::npos,
          std::string("pm.bad_fields.") + b.what, e);
    if (q) destroy(q);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <librrsr_trt_plugins_dynamic.so>\n", argv[0]);
    return 2;
  }
  PluginLibrary lib;
  if (!lib.open(argv[1], &g_finder)) {
    std::fprintf(stderr, "%s\n", lib.error.c_str());
    return 2;
  }
  const int32_t nb = lib.nb_creators;
  IPluginCreatorInterface* const* creators = lib.creators;
  // describe
  std::string js = "{\"creators\": [";
  IPluginCreatorV3One* mdcn = nullptr;
  IPluginCreatorV3One* ras = nullptr;
  IPluginCreatorV3One* pm = nullptr;
  for (int32_t i = 0; i < nb; ++i) {
    const InterfaceInfo info = creators[i]->getInterfaceInfo();
    auto* c = static_cast<IPluginCreatorV3One*>(creators[i]);
    js += std::string(i ? ", " : "") + "{\"interface\": \"" + json_escape(info.kind) + "\", \"major\": " +
          std::to_string(info.major) + ", \"name\": \"" + json_escape(c->getPluginName()) + "\", \"version\": \"" +
          json_escape(c->getPluginVersion()) + "\", \"namespace\": \"" + json_escape(c->getPluginNamespace()) +
          "\", \"fields\": [";
    const PluginFieldCollection* fn = c->getFieldNames();
    for (int32_t k = 0; fn && k < fn->nbFields; ++k)
      js += std::string(k ? ", " : "") + "{\"name\": \"" + json_escape(fn->fields[k].name) + "\", \"type\": " +
            std::to_string(static_cast<int>(fn->fields[k].type)) + ", \"length\": " +
            std::to_string(fn->fields[k].length) + "}";
    js += "]}";
    if (std::string(info.kind) == "PLUGIN CREATOR_V3ONE") {
      if (std::string(c->getPluginName()) == "RrsrModulatedDeformConv") mdcn = c;
      if (std::string(c->getPluginName()) == "RrsrRefAwareSelection") ras = c;
      if (std::string(c->getPluginName()) == "RrsrPatchMatch") pm = c;
    }
  }
  js += "]}";
  std::printf("%s\n", js.c_str());
  check(nb == 3 && mdcn && ras && pm, "creators", std::to_string(nb) + " creators");
  if (mdcn) check_mdcn(mdcn);
  if (ras) check_ras(ras);
  if (pm) check_patch_match(pm);
  std::printf("%d failures\n", g_failures);
  return g_failures > 255 ? 255 : g_failures;
}
