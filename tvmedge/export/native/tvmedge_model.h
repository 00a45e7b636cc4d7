/*
 * tvmedge_model.h: run a tvmedge-compiled model.so from C or C++, without Python.
 *
 * A model library is what `tvmedge compile` writes as NAME.tvmedge/model.so: a Relax VM
 * executable plus an I/O table (names, dtypes, shapes) that this API reads from the library
 * itself. It needs libtvm_runtime.so and libtvm_ffi.so next to libtvmedge_model.so.
 *
 *   tvmedge_model* m = tvmedge_model_load("model.so");
 *   if (!m) { fprintf(stderr, "%s\n", tvmedge_last_error()); return 1; }
 *   int64_t shape[4] = {1, 3, 224, 224};
 *   tvmedge_tensor in = {pixels, "float32", 4, shape};
 *   tvmedge_tensor* out; int n;
 *   if (tvmedge_model_run(m, &in, 1, &out, &n) != 0) { ... tvmedge_last_error() ... }
 *   ... use out[0].data ...
 *   tvmedge_tensors_free(out, n);
 *   tvmedge_model_free(m);
 *
 * Errors: every call that fails returns NULL, a negative number or non-zero (as documented
 * per function) and sets a one-line message for the calling thread, read with
 * tvmedge_last_error(). Successful calls leave the message as it was.
 *
 * Threads: the message is per thread. Distinct models may run concurrently; one model must not
 * be run by two threads at the same time (the VM keeps per-call state), so guard it yourself.
 */
#ifndef TVMEDGE_MODEL_H_
#define TVMEDGE_MODEL_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; only these functions are exported. */
#if defined(__GNUC__)
#define TVMEDGE_API __attribute__((visibility("default")))
#else
#define TVMEDGE_API
#endif

typedef struct tvmedge_model tvmedge_model;

/* A dense, C-order (row-major) CPU tensor. */
typedef struct tvmedge_tensor {
  void* data;           /* the elements: shape's product times the element size, in bytes */
  const char* dtype;    /* as the I/O table spells it: "float32", "int64", "bool", ... */
  int ndim;             /* 0 for a scalar */
  const int64_t* shape; /* ndim sizes */
} tvmedge_tensor;

/* Loads a model library; NULL on failure. Free the result with tvmedge_model_free.
 * The name must end in .so (TVM chooses its loader by extension); a name without a '/' is in
 * the current directory, not searched for like a system library. */
TVMEDGE_API tvmedge_model* tvmedge_model_load(const char* library_path);

/* Frees a model; NULL is allowed. Outputs of earlier runs stay valid. */
TVMEDGE_API void tvmedge_model_free(tvmedge_model* model);

/* The I/O table. Indices are positions, in the order tvmedge_model_run takes and returns
 * tensors. On a bad model or index: counts and ndim return -1, strings return NULL, and dims
 * return -2 (-1 is a valid answer: a symbolic dim, such as a batch size chosen per run).
 * Strings belong to the model and live until tvmedge_model_free. */
TVMEDGE_API int tvmedge_model_num_inputs(const tvmedge_model* model);
TVMEDGE_API int tvmedge_model_num_outputs(const tvmedge_model* model);
TVMEDGE_API const char* tvmedge_model_input_name(const tvmedge_model* model, int index);
TVMEDGE_API const char* tvmedge_model_input_dtype(const tvmedge_model* model, int index);
TVMEDGE_API int tvmedge_model_input_ndim(const tvmedge_model* model, int index);
TVMEDGE_API int64_t tvmedge_model_input_dim(const tvmedge_model* model, int index, int axis);
TVMEDGE_API const char* tvmedge_model_output_name(const tvmedge_model* model, int index);
TVMEDGE_API const char* tvmedge_model_output_dtype(const tvmedge_model* model, int index);
TVMEDGE_API int tvmedge_model_output_ndim(const tvmedge_model* model, int index);
TVMEDGE_API int64_t tvmedge_model_output_dim(const tvmedge_model* model, int index, int axis);

/* Runs the model once; 0 on success, non-zero on failure.
 *
 * inputs: num_inputs tensors, one per model input in I/O-table order. Their dtype, ndim and
 *   static dims must match the table, and a symbolic dim must have the same size wherever it
 *   appears; this is checked before running. The caller owns the inputs; they are only read,
 *   and only during this call. Data aligned to 64 bytes is used in place, other data is copied
 *   first (TVM's kernels may assume that alignment).
 * outputs, num_outputs: on success *outputs is a new array of *num_outputs tensors, in
 *   I/O-table order, that the caller owns: data (64-byte aligned), dtype and shape are all
 *   allocated by this call and released together by tvmedge_tensors_free(*outputs,
 *   *num_outputs). Outputs do not depend on the model: they stay valid across later runs and
 *   after tvmedge_model_free. On failure *outputs is NULL and *num_outputs 0. */
TVMEDGE_API int tvmedge_model_run(tvmedge_model* model, const tvmedge_tensor* inputs,
                                  int num_inputs, tvmedge_tensor** outputs, int* num_outputs);

/* Frees an output array from tvmedge_model_run (everything it points to too); NULL is allowed.
 * Never call it on tensors that you made yourself. */
TVMEDGE_API void tvmedge_tensors_free(tvmedge_tensor* tensors, int num_tensors);

/* Sizes the CPU thread pool the models of this process run on (TVM has one per process) and
 * returns the count now in use; -1 on failure. threads > 0: that many. threads == 0: the
 * default, TVM_NUM_THREADS when set, else the machine's physical cores (as ONNX Runtime and
 * the Python runtime do). Until it is called, the first tvmedge_model_load applies the
 * default. */
TVMEDGE_API int tvmedge_set_threads(int threads);

/* The calling thread's last error message; "" if no call on this thread has failed yet.
 * Valid until the next failing call on the same thread. */
TVMEDGE_API const char* tvmedge_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TVMEDGE_MODEL_H_ */
