// The C API of tvmedge_model.h over TVM's Relax VM.
//
// Only tvm-ffi headers are used: TVM's runtime headers need files that its wheel does not ship,
// and everything needed (modules, functions, tensors) is reachable through tvm-ffi. The VM
// itself is in libtvm_runtime.so, which build_native links into this library so that its VM
// functions are registered before any model library is loaded.
#include "tvmedge_model.h"

#include <tvm/ffi/any.h>
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/dtype.h>
#include <tvm/ffi/error.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>
#include <tvm/ffi/string.h>

#include <dlfcn.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

constexpr size_t kAlignment = 64;  // TVM allocates tensors 64-byte aligned; kernels may rely on it
constexpr int kPooledAllocator = 2;  // tvm::runtime::memory::AllocatorType::kPooled
constexpr int64_t kSymbolic = -1;
constexpr int64_t kBadDim = -2;

thread_local std::string last_error;

std::once_flag default_threads;  // the first load applies the default unless set before

// Physical cores: distinct (package, core) pairs in sysfs; the logical count if unreadable.
int PhysicalCores() {
  std::set<std::string> cores;
  for (unsigned cpu = 0;; ++cpu) {
    std::string topology = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream package(topology + "physical_package_id"), core(topology + "core_id");
    std::string p, c;
    if (!(package >> p) || !(core >> c)) break;
    cores.insert(p + ":" + c);
  }
  if (!cores.empty()) return static_cast<int>(cores.size());
  unsigned logical = std::thread::hardware_concurrency();
  return logical ? static_cast<int>(logical) : 1;
}

int DefaultThreads() {
  const char* env = std::getenv("TVM_NUM_THREADS");
  if (env != nullptr && *env != '\0') {
    char* end = nullptr;
    long value = std::strtol(env, &end, 10);
    if (*end != '\0' || value < 1 || value > 4096) {
      throw std::invalid_argument("TVM_NUM_THREADS='" + std::string(env) +
                                  "' is not a positive integer; unset or fix it");
    }
    return static_cast<int>(value);
  }
  return PhysicalCores();
}

int ConfigureThreads(int threads) {
  if (threads < 0) throw std::invalid_argument("threads must be >= 0 (0: the default)");
  int count = threads > 0 ? threads : DefaultThreads();
  auto config = ffi::Function::GetGlobal("runtime.config_threadpool");
  if (!config.has_value()) throw std::runtime_error("the TVM runtime has no thread pool");
  (*config)(0, count);  // affinity mode 0: TVM's default placement
  return count;
}

// One tensor of the I/O table.
struct IoSpec {
  std::string name;
  std::string dtype;
  std::vector<std::string> dims;  // as the table writes them: a size or a symbolic name
  std::vector<int64_t> sizes;     // the same as numbers, kSymbolic for a symbolic dim
};

std::string Join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

std::string FormatShape(const int64_t* shape, int ndim) {
  std::vector<std::string> dims;
  for (int i = 0; i < ndim; ++i) dims.push_back(std::to_string(shape[i]));
  return "[" + Join(dims, ",") + "]";
}

std::vector<std::string> Split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t end; (end = text.find(sep, start)) != std::string::npos; start = end + 1) {
    parts.push_back(text.substr(start, end - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

// TVM's messages can span lines; the API promises one line.
std::string OneLine(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return text;
}

// Runs an API body: an exception becomes the thread's last error and the `on_error` result.
template <typename R, typename Body>
R Guarded(R on_error, const std::string& context, Body&& body) {
  std::string message;
  try {
    return body();
  } catch (const ffi::Error& e) {
    message = e.kind() + ": " + e.message();
  } catch (const std::bad_alloc&) {
    message = "out of memory";
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {  // nothing may unwind into C callers
    message = "unknown error";
  }
  last_error = OneLine(context + message);
  return on_error;
}

void* AlignedAlloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;  // aligned_alloc needs it
  void* data = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
  if (data == nullptr) throw std::bad_alloc();
  return data;
}

size_t NumBytes(const int64_t* shape, int ndim, DLDataType dtype) {
  uint64_t numel = 1;
  for (int i = 0; i < ndim; ++i) {
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(shape[i]), &numel)) {
      throw std::length_error("tensor of shape " + FormatShape(shape, ndim) + " is too large");
    }
  }
  return ffi::GetDataSize(numel, dtype);
}

// Memory for an input tensor: the caller's buffer used in place, or an aligned copy we own.
struct HostBuffer {
  void* data;
  bool owned;
  void AllocData(DLTensor* tensor) { tensor->data = data; }
  void FreeData(DLTensor* tensor) {
    if (owned) std::free(tensor->data);
  }
};

ffi::Tensor ToTensor(const tvmedge_tensor& input) {
  DLDataType dtype = ffi::StringToDLDataType(input.dtype);
  ffi::ShapeView shape(input.shape, input.ndim);
  DLDevice cpu{kDLCPU, 0};
  if (reinterpret_cast<uintptr_t>(input.data) % kAlignment == 0) {
    return ffi::Tensor::FromNDAlloc(HostBuffer{input.data, false}, shape, dtype, cpu);
  }
  size_t bytes = NumBytes(input.shape, input.ndim, dtype);
  std::unique_ptr<void, decltype(&std::free)> copy(AlignedAlloc(bytes), &std::free);
  std::memcpy(copy.get(), input.data, bytes);
  ffi::Tensor tensor = ffi::Tensor::FromNDAlloc(HostBuffer{copy.get(), true}, shape, dtype, cpu);
  copy.release();  // the tensor frees it now
  return tensor;
}

void CopyOut(const ffi::Tensor& value, tvmedge_tensor* out) {
  const DLTensor& src = *value.GetDLTensorPtr();
  if (src.device.device_type != kDLCPU) throw std::runtime_error("an output is not on the CPU");
  if (!value.IsContiguous()) throw std::runtime_error("an output is not contiguous");
  size_t bytes = NumBytes(src.shape, src.ndim, src.dtype);
  // Each field is set as soon as it is allocated, so that tvmedge_tensors_free can undo a
  // partial copy.
  out->dtype = strdup(std::string(ffi::DLDataTypeToString(src.dtype)).c_str());
  if (out->dtype == nullptr) throw std::bad_alloc();
  auto* shape = static_cast<int64_t*>(std::malloc(sizeof(int64_t) * (src.ndim + 1)));
  if (shape == nullptr) throw std::bad_alloc();
  std::copy(src.shape, src.shape + src.ndim, shape);
  out->shape = shape;
  out->ndim = src.ndim;
  out->data = AlignedAlloc(bytes);
  if (bytes > 0) {
    std::memcpy(out->data, static_cast<const char*>(src.data) + src.byte_offset, bytes);
  }
}

// The VM returns one tensor for one output and an array for several.
std::vector<ffi::Tensor> Flatten(const ffi::Any& result) {
  if (auto tensor = result.as<ffi::Tensor>()) return {*tensor};
  if (auto array = result.as<ffi::Array<ffi::Any>>()) {
    std::vector<ffi::Tensor> tensors;
    for (const ffi::Any& item : *array) tensors.push_back(item.cast<ffi::Tensor>());
    return tensors;
  }
  throw std::runtime_error("the model returned a " + result.GetTypeKey() + ", not tensors");
}

}  // namespace

struct tvmedge_model {
  // Declared first so it is destroyed last: the VM's code lives in this library.
  ffi::Module library;
  ffi::Module vm;
  ffi::Function main;
  std::vector<IoSpec> inputs;
  std::vector<IoSpec> outputs;
};

namespace {

// Parses the table that every tvmedge model.so returns from its `tvmedge_io` function.
void ParseIoTable(const std::string& table, std::vector<IoSpec>* inputs,
                  std::vector<IoSpec>* outputs) {
  std::vector<std::string> lines = Split(table, '\n');
  for (size_t n = 0; n < lines.size(); ++n) {
    if (lines[n].empty()) continue;
    std::vector<std::string> fields = Split(lines[n], '\t');
    bool input = fields[0] == "input";
    if (fields.size() != 4 || (!input && fields[0] != "output")) {
      throw std::runtime_error("malformed I/O table line " + std::to_string(n + 1) + ": '" +
                               lines[n] + "'");
    }
    IoSpec spec{fields[1], fields[2], {}, {}};
    if (!fields[3].empty()) spec.dims = Split(fields[3], ',');  // empty: a scalar
    for (const std::string& dim : spec.dims) {
      bool number = !dim.empty() && dim.find_first_not_of("0123456789") == std::string::npos;
      spec.sizes.push_back(number ? std::stoll(dim) : kSymbolic);
    }
    (input ? inputs : outputs)->push_back(std::move(spec));
  }
}

// A model.so calls libtvm_ffi.so functions without listing it as a dependency, so they must be
// in the global symbol scope. They are when a program links this library; a host that dlopen()s
// it with RTLD_LOCAL (ctypes, JNI) keeps them private. Reopening libtvm_runtime.so with
// RTLD_GLOBAL makes it and its dependency libtvm_ffi.so global, loading nothing new.
void PromoteRuntimeToGlobalScope() {
  if (void* handle = dlopen("libtvm_runtime.so", RTLD_LAZY | RTLD_NOLOAD | RTLD_GLOBAL)) {
    dlclose(handle);
  }
}

ffi::Function RequireFunction(const ffi::Module& module, const char* name, const char* why) {
  ffi::Optional<ffi::Function> func = module->GetFunction(name);
  if (!func.has_value()) throw std::runtime_error(std::string("it has no '") + name + "' " + why);
  return *func;
}

const IoSpec& Spec(const tvmedge_model* model, bool input, int index) {
  if (model == nullptr) throw std::invalid_argument("model is NULL");
  const std::vector<IoSpec>& specs = input ? model->inputs : model->outputs;
  if (index < 0 || static_cast<size_t>(index) >= specs.size()) {
    throw std::out_of_range(std::string(input ? "input" : "output") + " index " +
                            std::to_string(index) + " is out of range: the model has " +
                            std::to_string(specs.size()) + (input ? " input(s)" : " output(s)"));
  }
  return specs[index];
}

int64_t Dim(const tvmedge_model* model, bool input, int index, int axis) {
  const IoSpec& spec = Spec(model, input, index);
  if (axis < 0 || static_cast<size_t>(axis) >= spec.sizes.size()) {
    throw std::out_of_range("axis " + std::to_string(axis) + " is out of range for '" +
                            spec.name + "' of " + std::to_string(spec.sizes.size()) +
                            " dimension(s)");
  }
  return spec.sizes[axis];
}

// Checks inputs against the table, so that mistakes get messages naming the input, not VM errors.
void CheckInputs(const tvmedge_model& model, const tvmedge_tensor* inputs, int num_inputs) {
  std::vector<std::string> names;
  for (const IoSpec& spec : model.inputs) names.push_back(spec.name);
  if (num_inputs != static_cast<int>(model.inputs.size())) {
    throw std::invalid_argument("the model takes " + std::to_string(names.size()) +
                                " input(s) (" + Join(names, ", ") + "), got " +
                                std::to_string(num_inputs));
  }
  if (num_inputs > 0 && inputs == nullptr) throw std::invalid_argument("inputs is NULL");
  std::map<std::string, std::pair<int64_t, std::string>> symbols;  // name -> (size, input)
  for (int i = 0; i < num_inputs; ++i) {
    const IoSpec& spec = model.inputs[i];
    const tvmedge_tensor& tensor = inputs[i];
    std::string where = "input '" + spec.name + "'";
    std::string expected = "[" + Join(spec.dims, ",") + "]";
    if (tensor.dtype == nullptr || spec.dtype != tensor.dtype) {
      throw std::invalid_argument(where + " has dtype " +
                                  (tensor.dtype ? tensor.dtype : "NULL") +
                                  ", the model expects " + spec.dtype);
    }
    if (tensor.ndim != static_cast<int>(spec.dims.size())) {
      throw std::invalid_argument(where + " has " + std::to_string(tensor.ndim) +
                                  " dimension(s), the model expects " +
                                  std::to_string(spec.dims.size()) + " " + expected);
    }
    if (tensor.ndim > 0 && tensor.shape == nullptr) {
      throw std::invalid_argument(where + ": shape is NULL");
    }
    std::string shape = FormatShape(tensor.shape, tensor.ndim);
    for (int axis = 0; axis < tensor.ndim; ++axis) {
      int64_t size = tensor.shape[axis];
      if (size < 0 || (spec.sizes[axis] != kSymbolic && size != spec.sizes[axis])) {
        throw std::invalid_argument(where + " has shape " + shape + ", the model expects " +
                                    expected);
      }
      if (spec.sizes[axis] != kSymbolic) continue;
      auto [seen, first] = symbols.try_emplace(spec.dims[axis], size, spec.name);
      if (!first && seen->second.first != size) {
        throw std::invalid_argument(where + " has " + spec.dims[axis] + "=" +
                                    std::to_string(size) + " but input '" + seen->second.second +
                                    "' has " + spec.dims[axis] + "=" +
                                    std::to_string(seen->second.first));
      }
    }
    DLDataType dtype = ffi::StringToDLDataType(tensor.dtype);
    if (tensor.data == nullptr && NumBytes(tensor.shape, tensor.ndim, dtype) > 0) {
      throw std::invalid_argument(where + ": data is NULL");
    }
  }
}

int Count(const tvmedge_model* model, bool input) {
  return Guarded(-1, "", [&] {
    if (model == nullptr) throw std::invalid_argument("model is NULL");
    return static_cast<int>((input ? model->inputs : model->outputs).size());
  });
}

const char* Name(const tvmedge_model* model, bool input, int index) {
  return Guarded<const char*>(nullptr, "", [&] { return Spec(model, input, index).name.c_str(); });
}

const char* DType(const tvmedge_model* model, bool input, int index) {
  return Guarded<const char*>(nullptr, "", [&] { return Spec(model, input, index).dtype.c_str(); });
}

int NDim(const tvmedge_model* model, bool input, int index) {
  return Guarded(-1, "", [&] { return static_cast<int>(Spec(model, input, index).dims.size()); });
}

}  // namespace

extern "C" {

tvmedge_model* tvmedge_model_load(const char* library_path) {
  std::string path = library_path ? library_path : "";
  return Guarded<tvmedge_model*>(nullptr, "cannot load model '" + path + "': ", [&] {
    if (library_path == nullptr) throw std::invalid_argument("the path is NULL");
    // dlopen would search the library path for a bare file name, not the current directory.
    if (path.find('/') == std::string::npos) path = "./" + path;
    struct stat info;
    if (stat(path.c_str(), &info) != 0) throw std::runtime_error(std::strerror(errno));
    if (S_ISDIR(info.st_mode)) throw std::runtime_error("it is a directory, not a model.so");
    if (path.size() < 3 || path.compare(path.size() - 3, 3, ".so") != 0) {
      throw std::runtime_error("its name must end in .so (TVM picks the loader by extension)");
    }
    PromoteRuntimeToGlobalScope();
    std::call_once(default_threads, [] { ConfigureThreads(0); });
    ffi::Module library = ffi::Module::LoadFromFile(path);
    ffi::Module vm = RequireFunction(library, "vm_load_executable",
                                     "function: it is not a Relax VM library")()
                         .cast<ffi::Module>();
    RequireFunction(vm, "vm_initialization", "function")(kDLCPU, 0, kPooledAllocator, kDLCPU, 0,
                                                         kPooledAllocator);
    ffi::Function main = RequireFunction(vm, "main", "function");
    ffi::Function io = RequireFunction(vm, "tvmedge_io",
                                       "I/O table: recompile it with this version of tvmedge");
    std::vector<IoSpec> inputs, outputs;
    ParseIoTable(io().cast<ffi::String>(), &inputs, &outputs);
    return new tvmedge_model{library, vm, main, std::move(inputs), std::move(outputs)};
  });
}

void tvmedge_model_free(tvmedge_model* model) { delete model; }

int tvmedge_set_threads(int threads) {
  return Guarded(-1, "cannot set threads: ", [&] {
    PromoteRuntimeToGlobalScope();
    int count = ConfigureThreads(threads);
    std::call_once(default_threads, [] {});  // set explicitly: the first load keeps it
    return count;
  });
}

int tvmedge_model_num_inputs(const tvmedge_model* model) { return Count(model, true); }
int tvmedge_model_num_outputs(const tvmedge_model* model) { return Count(model, false); }

const char* tvmedge_model_input_name(const tvmedge_model* model, int index) {
  return Name(model, true, index);
}
const char* tvmedge_model_output_name(const tvmedge_model* model, int index) {
  return Name(model, false, index);
}
const char* tvmedge_model_input_dtype(const tvmedge_model* model, int index) {
  return DType(model, true, index);
}
const char* tvmedge_model_output_dtype(const tvmedge_model* model, int index) {
  return DType(model, false, index);
}
int tvmedge_model_input_ndim(const tvmedge_model* model, int index) {
  return NDim(model, true, index);
}
int tvmedge_model_output_ndim(const tvmedge_model* model, int index) {
  return NDim(model, false, index);
}
int64_t tvmedge_model_input_dim(const tvmedge_model* model, int index, int axis) {
  return Guarded(kBadDim, "", [&] { return Dim(model, true, index, axis); });
}
int64_t tvmedge_model_output_dim(const tvmedge_model* model, int index, int axis) {
  return Guarded(kBadDim, "", [&] { return Dim(model, false, index, axis); });
}

int tvmedge_model_run(tvmedge_model* model, const tvmedge_tensor* inputs, int num_inputs,
                      tvmedge_tensor** outputs, int* num_outputs) {
  if (outputs != nullptr) *outputs = nullptr;
  if (num_outputs != nullptr) *num_outputs = 0;
  return Guarded(-1, "", [&] {
    if (model == nullptr) throw std::invalid_argument("model is NULL");
    if (outputs == nullptr || num_outputs == nullptr) {
      throw std::invalid_argument("outputs and num_outputs must not be NULL");
    }
    CheckInputs(*model, inputs, num_inputs);
    std::vector<ffi::Tensor> tensors;
    std::vector<ffi::AnyView> args;
    for (int i = 0; i < num_inputs; ++i) tensors.push_back(ToTensor(inputs[i]));
    for (const ffi::Tensor& tensor : tensors) args.emplace_back(tensor);
    ffi::Any result;
    model->main.CallPacked(args.data(), static_cast<int32_t>(args.size()), &result);
    std::vector<ffi::Tensor> values = Flatten(result);
    if (values.size() != model->outputs.size()) {
      throw std::runtime_error("the model returned " + std::to_string(values.size()) +
                               " tensor(s) but its I/O table lists " +
                               std::to_string(model->outputs.size()) + " output(s)");
    }
    // One spare slot: calloc(0, ...) may return NULL, which would read as out of memory.
    void* block = std::calloc(values.size() + 1, sizeof(tvmedge_tensor));
    if (block == nullptr) throw std::bad_alloc();
    auto* copies = static_cast<tvmedge_tensor*>(block);
    try {
      for (size_t i = 0; i < values.size(); ++i) CopyOut(values[i], &copies[i]);
    } catch (...) {
      tvmedge_tensors_free(copies, static_cast<int>(values.size()));
      throw;
    }
    *outputs = copies;
    *num_outputs = static_cast<int>(values.size());
    return 0;
  });
}

void tvmedge_tensors_free(tvmedge_tensor* tensors, int num_tensors) {
  if (tensors == nullptr) return;
  for (int i = 0; i < num_tensors; ++i) {
    std::free(tensors[i].data);
    std::free(const_cast<int64_t*>(tensors[i].shape));
    std::free(const_cast<char*>(tensors[i].dtype));
  }
  std::free(tensors);
}

const char* tvmedge_last_error(void) { return last_error.c_str(); }

}  // extern "C"
