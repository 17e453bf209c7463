// GPU enqueue harness for the RRSR TensorRT plugins, without TensorRT's library: loads
// librrsr_trt_plugins_dynamic.so through getCreators, creates the plugin of one test case from fields, round-trips
// its fields through getFieldsToSerialize into a second (runtime) plugin, makes the calls TensorRT makes before
// enqueue, and runs enqueue on GPU buffers. The outputs go to files, which the caller compares with the reference
// (tests/gpu/test_gpu_tensorrt_enqueue.py).
//
//   rrsr_trt_enqueue_check <librrsr_trt_plugins_dynamic.so> <case_dir>
//
// <case_dir>/case.txt, one item per line (blank lines and '#' comments ignored):
//   op <plugin name>                     the creator to use (e.g. RrsrModulatedDeformConv)
//   layer <name>                         optional layer name (default "enqueue_check")
//   field <name> <int> [<int> ...]       a kINT32 plugin field (attribute); absent ones take the spec default
//   input <name> <dtype> <d0> [<d1> ...] an input in plugin order; data: <case_dir>/<name>.bin
//   output <name> <dtype> <d0> [...]     an output in plugin order, as expected; written to <case_dir>/<name>.bin
//   tactic <int>                         optional: the custom tactic to run (must be one getValidTactics offers
//                                        after configurePlugin; default 0, the plugin's default)
// dtype: float32 | float16 | int32 | int64. .bin files are raw little-endian C-order arrays.
//
// Call sequence (what TensorRT does for a plugin layer in an engine build, then in an execution context):
//   build:   createPlugin(kBUILD) -> getNbOutputs -> getOutputDataTypes -> getOutputShapes (constant IExprBuilder)
//            -> supportsFormatCombination (every position, kLINEAR) -> configurePlugin -> getWorkspaceSize
//            -> getNbTactics / getValidTactics -> getFieldsToSerialize (deep-copied, then the build plugin is
//            destroyed)
//   runtime: createPlugin(kRUNTIME, the copied fields) -> getFieldsToSerialize equal to the copy (round trip)
//            -> setTactic (the case's) -> attachToContext (a resource context with an error recorder; the clone
//            must keep the tactic) -> onShapeChange -> enqueue on a
//            cudaStream -> cudaStreamSynchronize -> cudaGetLastError
// Every step's result is checked; the first failure prints "error: ..." (plus logger / recorder messages) and the
// exit status is 1 (2 for usage / case-file / library errors). Success prints "enqueue ok ..." and exits 0.
//
// cudart is linked statically here and in the plugin library: two runtime copies in one process, sharing the
// driver's primary context, so device pointers and the stream (a CUstream) are valid in both (as with TensorRT
// and a statically linked plugin).
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "trt_test_util.h"

using namespace nvinfer1;
using namespace rrsr_trt_test;

namespace {

CaptureLogger g_logger;
Finder g_finder(&g_logger);
Recorder g_recorder;

struct Tensor {
  std::string name;
  DataType type = DataType::kFLOAT;
  std::string type_name;
  Dims dims{};
  size_t count = 1;
  size_t bytes = 0;
  void* dev = nullptr;
};

struct Case {
  std::string op;
  std::string layer = "enqueue_check";
  std::vector<Field> fields;
  std::vector<Tensor> inputs, outputs;
  int32_t tactic = 0;
};

struct Failure : std::runtime_error {
  int code;
  Failure(const std::string& m, int c) : std::runtime_error(m), code(c) {}
};
[[noreturn]] void fail(const std::string& msg, int code = 1) { throw Failure(msg, code); }

bool parse_type(const std::string& s, DataType* t, size_t* size) {
  if (s == "float32") *t = DataType::kFLOAT, *size = 4;
  else if (s == "float16") *t = DataType::kHALF, *size = 2;
  else if (s == "int32") *t = DataType::kINT32, *size = 4;
  else if (s == "int64") *t = DataType::kINT64, *size = 8;
  else return false;
  return true;
}

const char* type_str(DataType t) {
  switch (t) {
    case DataType::kFLOAT: return "float32";
    case DataType::kHALF: return "float16";
    case DataType::kINT32: return "int32";
    case DataType::kINT64: return "int64";
    default: return "other";
  }
}

std::string dims_str(const Dims& d) {
  std::string s = "[";
  for (int i = 0; i < d.nbDims; ++i) s += (i ? ", " : "") + std::to_string(d.d[i]);
  return s + "]";
}

Case read_case(const std::string& dir) {
  const std::string path = dir + "/case.txt";
  std::ifstream f(path);
  if (!f) fail("cannot open " + path, 2);
  Case c;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream in(line);
    std::string key;
    if (!(in >> key)) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (key == "op" || key == "layer") {
      std::string v;
      if (!(in >> v)) fail(where + key + " needs a value", 2);
      (key == "op" ? c.op : c.layer) = v;
    } else if (key == "tactic") {
      if (!(in >> c.tactic)) fail(where + "tactic needs an integer", 2);
    } else if (key == "field") {
      Field fd{};
      fd.type = PluginFieldType::kINT32;
      if (!(in >> fd.name)) fail(where + "field needs a name", 2);
      long long v = 0;
      while (in >> v) fd.i32.push_back(static_cast<int32_t>(v));
      if (fd.i32.empty()) fail(where + "field '" + fd.name + "' needs values", 2);
      c.fields.push_back(fd);
    } else if (key == "input" || key == "output") {
      Tensor t;
      size_t elem = 0;
      if (!(in >> t.name >> t.type_name) || !parse_type(t.type_name, &t.type, &elem))
        fail(where + key + " needs <name> <float32|float16|int32|int64> <dims...>", 2);
      long long d = 0;
      while (in >> d) {
        if (t.dims.nbDims >= Dims::MAX_DIMS || d < 0) fail(where + "bad dims for '" + t.name + "'", 2);
        t.dims.d[t.dims.nbDims++] = d;
        t.count *= static_cast<size_t>(d);
      }
      t.bytes = t.count * elem;
      (key == "input" ? c.inputs : c.outputs).push_back(t);
    } else {
      fail(where + "unknown key '" + key + "'", 2);
    }
  }
  if (c.op.empty() || c.inputs.empty() || c.outputs.empty())
    fail(path + ": needs an 'op' line, at least one 'input' and one 'output'", 2);
  return c;
}

void cuda_check(cudaError_t e, const std::string& what) {
  if (e != cudaSuccess) fail(what + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

void step(const std::string& s) { std::printf("step %s\n", s.c_str()); }

// Owned deep copy of a PluginFieldCollection (what an engine's serialized plugin fields are).
Fc copy_fields(const PluginFieldCollection* fc) {
  if (fc == nullptr) fail("getFieldsToSerialize returned null");
  std::vector<Field> out;
  for (int32_t i = 0; i < fc->nbFields; ++i) {
    const PluginField& f = fc->fields[i];
    if (f.name == nullptr || (f.length > 0 && f.data == nullptr))
      fail("getFieldsToSerialize: field " + std::to_string(i) + " has no name or no data");
    Field x{};
    x.name = f.name;
    x.type = f.type;
    if (f.type == PluginFieldType::kINT32) {
      auto* p = static_cast<const int32_t*>(f.data);
      x.i32.assign(p, p + f.length);
    } else if (f.type == PluginFieldType::kINT64) {
      auto* p = static_cast<const int64_t*>(f.data);
      x.i64.assign(p, p + f.length);
    } else {
      fail(std::string("getFieldsToSerialize: field '") + f.name + "' has a type this harness does not copy");
    }
    out.push_back(x);
  }
  return Fc(out);
}

int run(const char* lib_path, const std::string& dir) {
  const Case cs = read_case(dir);
  std::vector<Tensor> ins = cs.inputs, outs = cs.outputs;
  const int32_t nb_in = static_cast<int32_t>(ins.size()), nb_out = static_cast<int32_t>(outs.size());

  g_logger.echo = true;
  PluginLibrary lib;
  if (!lib.open(lib_path, &g_finder)) fail(std::string(lib_path) + ": " + lib.error, 2);
  IPluginCreatorV3One* creator = lib.find_v3one(cs.op);
  if (creator == nullptr)
    fail(std::string(lib_path) + " has no IPluginCreatorV3One named '" + cs.op + "' (" +
             std::to_string(lib.nb_creators) + " creators)",
         2);
  step(std::string("getCreators: '") + creator->getPluginName() + "' version " + creator->getPluginVersion());

  std::vector<DynamicPluginTensorDesc> dyn_io;
  for (const Tensor& t : ins) dyn_io.push_back(dyn(t.dims, t.type));
  for (const Tensor& t : outs) dyn_io.push_back(dyn(t.dims, t.type));

  // ---- build phase
  Fc fields(cs.fields);
  IPluginV3* bp = creator->createPlugin(cs.layer.c_str(), &fields.fc, TensorRTPhase::kBUILD);
  if (bp == nullptr) fail("createPlugin(kBUILD) returned null: " + g_logger.last_error());
  std::unique_ptr<IPluginV3> build_plugin(bp);
  auto* core = cap<IPluginV3OneCore>(bp, PluginCapabilityType::kCORE);
  auto* build = cap<IPluginV3OneBuild>(bp, PluginCapabilityType::kBUILD);
  auto* brt = cap<IPluginV3OneRuntime>(bp, PluginCapabilityType::kRUNTIME);
  if (!core || !build || !brt) fail("getCapabilityInterface returned null for core/build/runtime");
  if (cs.op != core->getPluginName()) fail(std::string("plugin name is '") + core->getPluginName() + "'");
  step("createPlugin(kBUILD) from " + std::to_string(cs.fields.size()) + " fields");

  if (build->getNbOutputs() != nb_out)
    fail("getNbOutputs() = " + std::to_string(build->getNbOutputs()) + ", case has " + std::to_string(nb_out));
  {
    std::vector<DataType> in_t, out_t(static_cast<size_t>(nb_out), DataType::kBOOL);
    for (const Tensor& t : ins) in_t.push_back(t.type);
    if (build->getOutputDataTypes(out_t.data(), nb_out, in_t.data(), nb_in) != 0)
      fail("getOutputDataTypes failed: " + g_logger.last_error());
    for (int32_t o = 0; o < nb_out; ++o)
      if (out_t[static_cast<size_t>(o)] != outs[static_cast<size_t>(o)].type)
        fail("getOutputDataTypes: output '" + outs[static_cast<size_t>(o)].name + "' is " +
             type_str(out_t[static_cast<size_t>(o)]) + ", case says " + outs[static_cast<size_t>(o)].type_name);
  }
  step("getNbOutputs, getOutputDataTypes");
  {
    Builder eb;
    std::vector<DimsExprs> in_e(static_cast<size_t>(nb_in)), out_e(static_cast<size_t>(nb_out));
    for (int32_t i = 0; i < nb_in; ++i) {
      const Dims& d = ins[static_cast<size_t>(i)].dims;
      in_e[static_cast<size_t>(i)].nbDims = d.nbDims;
      for (int k = 0; k < d.nbDims; ++k) in_e[static_cast<size_t>(i)].d[k] = eb.constant(d.d[k]);
    }
    if (build->getOutputShapes(in_e.data(), nb_in, nullptr, 0, out_e.data(), nb_out, eb) != 0)
      fail("getOutputShapes failed: " + g_logger.last_error());
    for (int32_t o = 0; o < nb_out; ++o) {
      const DimsExprs& e = out_e[static_cast<size_t>(o)];
      Dims got{};
      got.nbDims = e.nbDims;
      for (int k = 0; k < e.nbDims; ++k) {
        if (e.d[k] == nullptr || !e.d[k]->isConstant()) fail("getOutputShapes: non-constant output dimension");
        got.d[k] = e.d[k]->getConstantValue();
      }
      const Tensor& t = outs[static_cast<size_t>(o)];
      bool same = got.nbDims == t.dims.nbDims;
      for (int k = 0; same && k < got.nbDims; ++k) same = got.d[k] == t.dims.d[k];
      if (!same) fail("getOutputShapes: output '" + t.name + "' is " + dims_str(got) + ", case says " + dims_str(t.dims));
    }
  }
  step("getOutputShapes");
  for (int32_t pos = 0; pos < nb_in + nb_out; ++pos)
    if (!build->supportsFormatCombination(pos, dyn_io.data(), nb_in, nb_out))
      fail("supportsFormatCombination refuses position " + std::to_string(pos) + " (" +
           (pos < nb_in ? "input '" + ins[static_cast<size_t>(pos)].name
                        : "output '" + outs[static_cast<size_t>(pos - nb_in)].name) +
           "', " + type_str(dyn_io[static_cast<size_t>(pos)].desc.type) + ", kLINEAR)");
  step("supportsFormatCombination (" + std::to_string(nb_in + nb_out) + " positions)");
  if (build->configurePlugin(dyn_io.data(), nb_in, dyn_io.data() + nb_in, nb_out) != 0)
    fail("configurePlugin failed: " + g_logger.last_error());
  const size_t ws_bytes = build->getWorkspaceSize(dyn_io.data(), nb_in, dyn_io.data() + nb_in, nb_out);
  step("configurePlugin, getWorkspaceSize = " + std::to_string(ws_bytes) + " bytes");
  {
    const int32_t nb = build->getNbTactics();
    std::vector<int32_t> tactics(static_cast<size_t>(nb > 0 ? nb : 0));
    if (nb > 0 && build->getValidTactics(tactics.data(), nb) != 0)
      fail("getValidTactics failed: " + g_logger.last_error());
    std::string list;
    bool offered = cs.tactic == 0;
    for (int32_t t : tactics) {
      if (t == 0) fail("getValidTactics offers 0 (reserved for the default tactic)");
      list += (list.empty() ? "" : ", ") + std::to_string(t);
      offered = offered || t == cs.tactic;
    }
    if (!offered) fail("the case's tactic " + std::to_string(cs.tactic) + " is not offered (tactics: [" + list + "])");
    step("getValidTactics: [" + list + "]");
  }
  const Fc serialized = copy_fields(brt->getFieldsToSerialize());
  const std::string ser_str = fc_str([&] {
    bool ok = false;
    return read_fc(&serialized.fc, &ok);
  }());
  build_plugin.reset();  // the runtime plugin must not depend on the build plugin
  step("getFieldsToSerialize: " + ser_str + "(build plugin destroyed)");

  // ---- runtime phase: the plugin re-created from the serialized fields is the one that runs
  IPluginV3* rp = creator->createPlugin(cs.layer.c_str(), &serialized.fc, TensorRTPhase::kRUNTIME);
  if (rp == nullptr) fail("createPlugin(kRUNTIME) from the serialized fields returned null: " + g_logger.last_error());
  std::unique_ptr<IPluginV3> runtime_plugin(rp);
  auto* rrt = cap<IPluginV3OneRuntime>(rp, PluginCapabilityType::kRUNTIME);
  if (rrt == nullptr) fail("runtime plugin: getCapabilityInterface(kRUNTIME) returned null");
  {
    bool ok = false;
    const std::string again = fc_str(read_fc(rrt->getFieldsToSerialize(), &ok));
    if (!ok || again != ser_str) fail("round trip: re-created plugin serializes " + again + "instead of " + ser_str);
  }
  step("createPlugin(kRUNTIME) from the serialized fields (round trip equal)");
  if (rrt->setTactic(cs.tactic) != 0) fail("setTactic(" + std::to_string(cs.tactic) + ") failed: " + g_logger.last_error());
  step("setTactic(" + std::to_string(cs.tactic) + ")");
  ResourceContext ctx(&g_recorder);
  IPluginV3* cp = rrt->attachToContext(&ctx);
  if (cp == nullptr) fail("attachToContext returned null");
  std::unique_ptr<IPluginV3> ctx_plugin(cp);
  auto* crt = cap<IPluginV3OneRuntime>(cp, PluginCapabilityType::kRUNTIME);
  if (crt == nullptr) fail("attached plugin: getCapabilityInterface(kRUNTIME) returned null");
  step("attachToContext");
  std::vector<PluginTensorDesc> desc;
  for (const auto& d : dyn_io) desc.push_back(d.desc);
  if (crt->onShapeChange(desc.data(), nb_in, desc.data() + nb_in, nb_out) != 0)
    fail("onShapeChange failed: " + g_logger.last_error());
  step("onShapeChange");

  // ---- device buffers, enqueue
  int ndev = 0;
  cuda_check(cudaGetDeviceCount(&ndev), "cudaGetDeviceCount");
  if (ndev == 0) fail("no CUDA device");
  cudaDeviceProp prop{};
  cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  step(std::string("device 0: ") + prop.name + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")");
  std::vector<void*> to_free;
  auto dmalloc = [&](size_t bytes, const std::string& what) -> void* {
    void* p = nullptr;
    cuda_check(cudaMalloc(&p, bytes > 0 ? bytes : 1), "cudaMalloc(" + what + ", " + std::to_string(bytes) + ")");
    to_free.push_back(p);
    return p;
  };
  std::vector<const void*> in_ptrs;
  for (Tensor& t : ins) {
    const std::string path = dir + "/" + t.name + ".bin";
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot open " + path, 2);
    std::vector<char> host((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (host.size() != t.bytes)
      fail(path + " has " + std::to_string(host.size()) + " bytes, " + t.name + " " + t.type_name + " " +
               dims_str(t.dims) + " needs " + std::to_string(t.bytes),
           2);
    t.dev = dmalloc(t.bytes, t.name);
    cuda_check(cudaMemcpy(t.dev, host.data(), t.bytes, cudaMemcpyHostToDevice), "cudaMemcpy " + t.name);
    in_ptrs.push_back(t.dev);
  }
  std::vector<void*> out_ptrs;
  for (Tensor& t : outs) {
    t.dev = dmalloc(t.bytes, t.name);
    // all-ones bytes (NaN / -1): an output the kernel leaves unwritten cannot pass for a result
    cuda_check(cudaMemset(t.dev, 0xFF, t.bytes), "cudaMemset " + t.name);
    out_ptrs.push_back(t.dev);
  }
  void* ws = ws_bytes > 0 ? dmalloc(ws_bytes, "workspace") : nullptr;
  cudaStream_t stream = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize before enqueue");
  const int32_t rc = crt->enqueue(desc.data(), desc.data() + nb_in, in_ptrs.data(), out_ptrs.data(), ws, stream);
  const cudaError_t sync = cudaStreamSynchronize(stream);
  const cudaError_t last = cudaGetLastError();
  if (rc != 0) fail("enqueue returned " + std::to_string(rc) + ": " + g_logger.last_error());
  cuda_check(sync, "cudaStreamSynchronize after enqueue");
  cuda_check(last, "cudaGetLastError after enqueue");
  step("enqueue on a cudaStream, synchronized");
  for (const Tensor& t : outs) {
    std::vector<char> host(t.bytes);
    cuda_check(cudaMemcpy(host.data(), t.dev, t.bytes, cudaMemcpyDeviceToHost), "cudaMemcpy " + t.name);
    const std::string path = dir + "/" + t.name + ".bin";
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f.write(host.data(), static_cast<std::streamsize>(host.size())))
      fail("cannot write " + path, 2);
  }
  cuda_check(cudaStreamDestroy(stream), "cudaStreamDestroy");
  for (void* p : to_free) cuda_check(cudaFree(p), "cudaFree");
  if (g_recorder.getNbErrors() != 0) fail("the error recorder holds " + std::to_string(g_recorder.getNbErrors()) + " errors");
  std::printf("enqueue ok: %s (layer '%s'), %d inputs, %d outputs, workspace %zu bytes, tactic %d\n", cs.op.c_str(),
              cs.layer.c_str(), nb_in, nb_out, ws_bytes, cs.tactic);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <librrsr_trt_plugins_dynamic.so> <case_dir>   (see the top of %s)\n", argv[0],
                 __FILE__);
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const Failure& f) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", f.what());
    for (int32_t i = 0; i < g_recorder.getNbErrors(); ++i)
      std::fprintf(stderr, "  error recorder: %s\n", g_recorder.getErrorDesc(i));
    return f.code;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
