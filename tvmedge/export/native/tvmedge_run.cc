// tvmedge-run: run a tvmedge model library on .npy inputs, write .npy outputs, time the runs.
//
//   tvmedge-run MODEL.so [--input NAME=FILE.npy ...] [--output-dir DIR] [--warmup N] [--repeat N]
//               [--threads N]
//
// --threads: the CPU threads the model runs on; 0 (the default) means TVM_NUM_THREADS when set,
// else the physical cores (tvmedge_set_threads). The JSON line reports the count used.
// Every model input needs an --input. The model runs `warmup` untimed then `repeat` timed times
// (defaults 0 and 1); stdout gets one JSON line: load time, latency statistics in milliseconds
// (steady clock; percentiles interpolated linearly, as numpy.percentile does) and the outputs.
// A run is one tvmedge_model_run call: input checks, the model, and the copy of its outputs.
//
// With --output-dir, output NAME goes to DIR/FILE.npy, FILE being NAME with every byte other
// than A-Z a-z 0-9 . _ - replaced by '_', and a leading '.' too (no hidden files, no '..'); an
// empty name becomes '_'. If two outputs get the same FILE, the later one has _INDEX appended
// (its output position) until the name is unique. The JSON line names each output's file.
//
// Errors: one line on stderr, and exit status 1 (2 for a bad command line).
//
// This program uses only the C API of tvmedge_model.h, as any application would.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "tvmedge_model.h"

namespace {

constexpr size_t kAlignment = 64;  // so that the C API can use input buffers in place

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char kUsage[] =
    "usage: tvmedge-run MODEL.so [--input NAME=FILE.npy ...] [--output-dir DIR] "
    "[--warmup N] [--repeat N] [--threads N]";

// The .npy element types we read and write (little-endian, as numpy writes on every host).
struct NpyType {
  const char* descr;
  const char* dtype;
  size_t size;
};
const NpyType kNpyTypes[] = {
    {"<f4", "float32", 4}, {"<f2", "float16", 2}, {"<f8", "float64", 8}, {"|i1", "int8", 1},
    {"|u1", "uint8", 1},   {"<i4", "int32", 4},   {"<i8", "int64", 8},   {"|b1", "bool", 1},
};

const NpyType* FindNpyType(const std::string& key, bool by_descr) {
  for (const NpyType& type : kNpyTypes) {
    if (key == (by_descr ? type.descr : type.dtype)) return &type;
  }
  return nullptr;
}

struct Array {
  const NpyType* type = nullptr;
  std::vector<int64_t> shape;
  std::unique_ptr<void, decltype(&std::free)> data{nullptr, &std::free};
};

void* AlignedAlloc(size_t bytes) {
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, rounded ? rounded : kAlignment);
  if (data == nullptr) throw std::runtime_error("out of memory");
  return data;
}

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\n") - begin + 1);
}

// One value of a .npy header, a Python dict literal written by numpy, such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3), }: a string without its quotes,
// a tuple with its parentheses, or a name (True, False).
std::string HeaderValue(const std::string& header, const std::string& key,
                        const std::string& path) {
  size_t at = header.find("'" + key + "'");
  size_t begin = at;
  if (at != std::string::npos) begin = header.find_first_not_of(" :", at + key.size() + 2);
  if (begin == std::string::npos) {
    throw std::runtime_error("'" + path + "' has no '" + key + "' in its .npy header");
  }
  char open = header[begin];
  size_t end = open == '\'' ? header.find('\'', begin + 1)
               : open == '(' ? header.find(')', begin)
                             : header.find_first_of(",}", begin);
  if (end == std::string::npos) throw std::runtime_error("'" + path + "' has a malformed header");
  if (open == '\'') return header.substr(begin + 1, end - begin - 1);
  return Trim(header.substr(begin, end - begin + (open == '(')));
}

std::vector<int64_t> ParseShape(const std::string& text, const std::string& path) {
  if (text.size() < 2 || text.front() != '(') {
    throw std::runtime_error("'" + path + "': bad shape '" + text + "'");
  }
  std::vector<int64_t> shape;
  std::string inner = text.substr(1, text.size() - 2);  // without the parentheses
  size_t start = 0;
  while (start <= inner.size()) {
    size_t comma = std::min(inner.find(',', start), inner.size());
    std::string item = Trim(inner.substr(start, comma - start));
    start = comma + 1;
    if (item.empty()) continue;  // "(3,)" and "()"
    char* end = nullptr;
    long long size = std::strtoll(item.c_str(), &end, 10);
    if (*end != '\0' || size < 0) {
      throw std::runtime_error("'" + path + "': bad shape '" + text + "'");
    }
    shape.push_back(size);
  }
  return shape;
}

uint32_t LittleEndian(const unsigned char* bytes, int count) {
  uint32_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = value << 8 | bytes[i];
  return value;
}

Array ReadNpy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot open '" + path + "': " + std::strerror(errno));
  unsigned char prefix[12];
  if (!file.read(reinterpret_cast<char*>(prefix), 10) || std::memcmp(prefix, "\x93NUMPY", 6)) {
    throw std::runtime_error("'" + path + "' is not a .npy file");
  }
  int major = prefix[6];
  if (major != 1 && major != 2) {
    throw std::runtime_error("'" + path + "' has .npy format version " + std::to_string(major) +
                             "." + std::to_string(prefix[7]) + "; only 1.0 and 2.0 are read");
  }
  // Version 1 has a 2-byte header length, version 2 a 4-byte one.
  if (major == 2 && !file.read(reinterpret_cast<char*>(prefix) + 10, 2)) {
    throw std::runtime_error("'" + path + "' is truncated");
  }
  std::string header(LittleEndian(prefix + 8, major == 1 ? 2 : 4), '\0');
  if (!file.read(header.data(), header.size())) {
    throw std::runtime_error("'" + path + "' is truncated");
  }
  Array array;
  std::string descr = HeaderValue(header, "descr", path);
  array.type = FindNpyType(descr, true);
  if (array.type == nullptr) {
    throw std::runtime_error("'" + path + "' has dtype '" + descr +
                             "'; supported: little-endian float32, float16, float64, int8, "
                             "uint8, int32, int64 and bool");
  }
  if (HeaderValue(header, "fortran_order", path) != "False") {
    throw std::runtime_error("'" + path + "' is in Fortran order; save a C-order array "
                             "(numpy.ascontiguousarray)");
  }
  array.shape = ParseShape(HeaderValue(header, "shape", path), path);
  // Compare with the file's size before allocating, so a corrupt shape cannot ask for terabytes.
  std::streamoff data_start = file.tellg();
  file.seekg(0, std::ios::end);
  auto available = static_cast<uint64_t>(file.tellg() - data_start);
  uint64_t bytes = array.type->size;
  for (int64_t size : array.shape) {
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(size), &bytes)) bytes = UINT64_MAX;
  }
  if (bytes > available) {
    throw std::runtime_error("'" + path + "' is truncated: its shape needs " +
                             std::to_string(bytes) + " bytes of data, it has " +
                             std::to_string(available));
  }
  file.seekg(data_start);
  array.data.reset(AlignedAlloc(bytes));
  if (!file.read(static_cast<char*>(array.data.get()), bytes)) {
    throw std::runtime_error("cannot read '" + path + "'");
  }
  return array;
}

void WriteNpy(const std::string& path, const tvmedge_tensor& tensor) {
  const NpyType* type = FindNpyType(tensor.dtype, false);
  if (type == nullptr) {
    throw std::runtime_error("cannot write '" + path + "': .npy output of dtype " +
                             tensor.dtype + " is not supported");
  }
  std::string shape;
  for (int i = 0; i < tensor.ndim; ++i) shape += std::to_string(tensor.shape[i]) + ", ";
  if (tensor.ndim > 1) shape.resize(shape.size() - 2);  // "(3,)" keeps its comma
  std::string header = std::string("{'descr': '") + type->descr +
                       "', 'fortran_order': False, 'shape': (" + Trim(shape) + "), }";
  // Pad with spaces so the data starts 64-byte aligned, as numpy does.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  if (header.size() > 0xffff) throw std::runtime_error("'" + path + "': too many dimensions");
  size_t bytes = type->size;
  for (int i = 0; i < tensor.ndim; ++i) bytes *= static_cast<size_t>(tensor.shape[i]);
  std::ofstream file(path, std::ios::binary);
  const unsigned char length[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                   static_cast<unsigned char>(header.size() >> 8)};
  file.write("\x93NUMPY\x01\x00", 8);  // format version 1.0
  file.write(reinterpret_cast<const char*>(length), 2);
  file << header;
  file.write(static_cast<const char*>(tensor.data), bytes);
  if (!file.flush()) {
    throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
  }
}

std::string SafeFileName(const std::string& name) {
  std::string safe = name.empty() ? "_" : name;
  for (char& c : safe) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  if (safe[0] == '.') safe[0] = '_';
  return safe;
}

std::string Json(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string Json(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4f", value);
  return text;
}

double Percentile(const std::vector<double>& sorted, double percent) {
  double rank = percent / 100 * (sorted.size() - 1);
  size_t low = static_cast<size_t>(std::floor(rank));
  size_t high = static_cast<size_t>(std::ceil(rank));
  return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
}

struct Options {
  std::string model;
  std::vector<std::pair<std::string, std::string>> inputs;  // (name, file)
  std::string output_dir;
  int warmup = 0;
  int repeat = 1;
  int threads = 0;  // 0: the default (TVM_NUM_THREADS, else the physical cores)
};

int ParseCount(const std::string& option, const char* text, int minimum) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || value < minimum || value > 1000000) {
    throw UsageError(option + " needs a whole number from " + std::to_string(minimum) +
                     " to 1000000, got '" + text + "'");
  }
  return static_cast<int>(value);
}

Options ParseArgs(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::puts(kUsage);
      std::exit(0);
    }
    if (arg.rfind("--", 0) != 0) {
      if (!options.model.empty()) throw UsageError("more than one model given: '" + arg + "'");
      options.model = arg;
      continue;
    }
    if (arg != "--input" && arg != "--output-dir" && arg != "--warmup" && arg != "--repeat" &&
        arg != "--threads") {
      throw UsageError("unknown option '" + arg + "'");
    }
    if (i + 1 == argc) throw UsageError(arg + " needs a value");
    const char* value = argv[++i];
    if (arg == "--input") {
      const char* equals = std::strchr(value, '=');
      if (equals == nullptr) {
        throw UsageError("--input needs NAME=FILE.npy, got '" + std::string(value) + "'");
      }
      options.inputs.emplace_back(std::string(value, equals), equals + 1);
    } else if (arg == "--output-dir") {
      options.output_dir = value;
    } else if (arg == "--warmup") {
      options.warmup = ParseCount(arg, value, 0);
    } else if (arg == "--threads") {
      options.threads = ParseCount(arg, value, 0);
    } else {
      options.repeat = ParseCount(arg, value, 1);
    }
  }
  if (options.model.empty()) throw UsageError("no model library given");
  return options;
}

std::string DescribeInput(const tvmedge_model* model, int index) {
  std::string shape;
  for (int axis = 0; axis < tvmedge_model_input_ndim(model, index); ++axis) {
    int64_t size = tvmedge_model_input_dim(model, index, axis);
    shape += (axis ? "," : "") + (size < 0 ? std::string("?") : std::to_string(size));
  }
  return std::string(tvmedge_model_input_name(model, index)) + " " +
         tvmedge_model_input_dtype(model, index) + " [" + shape + "]";
}

// Reads the --input files into model-input order.
std::vector<Array> ReadInputs(const tvmedge_model* model, const Options& options) {
  int count = tvmedge_model_num_inputs(model);
  std::string inputs;
  std::map<std::string, int> positions;
  for (int i = 0; i < count; ++i) {
    positions[tvmedge_model_input_name(model, i)] = i;
    inputs += (i ? ", " : "") + DescribeInput(model, i);
  }
  std::vector<std::string> files(count);
  for (const auto& [name, file] : options.inputs) {
    auto found = positions.find(name);
    if (found == positions.end()) {
      throw std::runtime_error("the model has no input '" + name + "'; its inputs: " + inputs);
    }
    if (!files[found->second].empty()) throw std::runtime_error("--input " + name + " given twice");
    files[found->second] = file;
  }
  std::vector<Array> arrays;
  for (int i = 0; i < count; ++i) {
    if (files[i].empty()) {
      throw std::runtime_error(std::string("missing --input ") +
                               tvmedge_model_input_name(model, i) +
                               "=FILE.npy; the model's inputs: " + inputs);
    }
    arrays.push_back(ReadNpy(files[i]));
  }
  return arrays;
}

// The outputs of one run, freed with the C API when replaced or destroyed.
class Outputs {
 public:
  Outputs() = default;
  Outputs(const Outputs&) = delete;
  Outputs& operator=(const Outputs&) = delete;
  ~Outputs() { Clear(); }

  void Clear() {
    tvmedge_tensors_free(tensors_, count_);
    tensors_ = nullptr;
    count_ = 0;
  }
  tvmedge_tensor** tensors() { return &tensors_; }
  int* count() { return &count_; }
  const tvmedge_tensor& operator[](int i) const { return tensors_[i]; }
  int size() const { return count_; }

 private:
  tvmedge_tensor* tensors_ = nullptr;
  int count_ = 0;
};

using Clock = std::chrono::steady_clock;

double MillisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Writes the outputs into `dir`; returns each output's file.
std::vector<std::string> WriteOutputs(const tvmedge_model* model, const Outputs& outputs,
                                      const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw std::runtime_error("cannot create '" + dir + "': " + error.message());
  std::vector<std::string> files;
  std::set<std::string> used;
  for (int i = 0; i < outputs.size(); ++i) {
    std::string name = SafeFileName(tvmedge_model_output_name(model, i));
    while (!used.insert(name).second) name += "_" + std::to_string(i);
    files.push_back((std::filesystem::path(dir) / (name + ".npy")).string());
    WriteNpy(files.back(), outputs[i]);
  }
  return files;
}

void Main(const Options& options) {
  int threads = tvmedge_set_threads(options.threads);
  if (threads < 0) throw std::runtime_error(tvmedge_last_error());
  Clock::time_point start = Clock::now();
  std::unique_ptr<tvmedge_model, decltype(&tvmedge_model_free)> model(
      tvmedge_model_load(options.model.c_str()), &tvmedge_model_free);
  if (!model) throw std::runtime_error(tvmedge_last_error());
  double load_ms = MillisecondsSince(start);

  std::vector<Array> arrays = ReadInputs(model.get(), options);
  std::vector<tvmedge_tensor> inputs;
  for (Array& array : arrays) {
    inputs.push_back({array.data.get(), array.type->dtype, static_cast<int>(array.shape.size()),
                      array.shape.data()});
  }
  Outputs outputs;
  std::vector<double> latencies;
  for (int i = 0; i < options.warmup + options.repeat; ++i) {
    outputs.Clear();  // outside the timed region
    start = Clock::now();
    if (tvmedge_model_run(model.get(), inputs.data(), static_cast<int>(inputs.size()),
                          outputs.tensors(), outputs.count()) != 0) {
      throw std::runtime_error(tvmedge_last_error());
    }
    if (i >= options.warmup) latencies.push_back(MillisecondsSince(start));
  }
  std::vector<std::string> files;
  if (!options.output_dir.empty()) files = WriteOutputs(model.get(), outputs, options.output_dir);

  std::sort(latencies.begin(), latencies.end());
  double mean = 0;
  for (double ms : latencies) mean += ms / latencies.size();
  std::string json = "{\"load_ms\":" + Json(load_ms) + ",\"threads\":" + std::to_string(threads) +
                     ",\"runs\":" + std::to_string(latencies.size()) +
                     ",\"warmup\":" + std::to_string(options.warmup) +
                     ",\"latency_ms\":{\"p50\":" + Json(Percentile(latencies, 50)) +
                     ",\"p90\":" + Json(Percentile(latencies, 90)) +
                     ",\"p99\":" + Json(Percentile(latencies, 99)) + ",\"mean\":" + Json(mean) +
                     ",\"min\":" + Json(latencies.front()) + "},\"outputs\":[";
  for (int i = 0; i < outputs.size(); ++i) {
    std::string shape;
    for (int axis = 0; axis < outputs[i].ndim; ++axis) {
      shape += (axis ? "," : "") + std::to_string(outputs[i].shape[axis]);
    }
    json += std::string(i ? "," : "") +
            "{\"name\":" + Json(tvmedge_model_output_name(model.get(), i)) +
            ",\"dtype\":" + Json(outputs[i].dtype) + ",\"shape\":[" + shape +
            "],\"file\":" + (files.empty() ? "null" : Json(files[i])) + "}";
  }
  std::printf("%s]}\n", json.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Main(ParseArgs(argc, argv));
    return 0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "tvmedge-run: %s (see tvmedge-run --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tvmedge-run: error: %s\n", e.what());
    return 1;
  }
}
