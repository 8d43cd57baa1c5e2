/* hepnn embeddable inference runtime: C API.
 * Load an ONNX model once (immutable, shareable across threads), create one session per thread,
 * run with caller-owned buffers (float32, or int64/bool where the model's inputs and outputs are). Every call returns a status; hepnn_last_error() gives
 * the message of the calling thread's last failure. */
#ifndef HEPNN_HEPNN_H
#define HEPNN_HEPNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define HEPNN_API __declspec(dllexport)
#else
#define HEPNN_API __attribute__((visibility("default")))
#endif

typedef enum hepnn_status {
  HEPNN_OK = 0,
  HEPNN_ERROR_INVALID_ARGUMENT = 1, /* null pointer, unknown name, wrong shape, small buffer */
  HEPNN_ERROR_MODEL = 2,            /* malformed or unsupported model file */
  HEPNN_ERROR_IO = 3,               /* the file cannot be opened or read */
  HEPNN_ERROR_INTERNAL = 4          /* anything else (out of memory ...) */
} hepnn_status;

typedef struct hepnn_model hepnn_model;     /* immutable after load; share across threads */
typedef struct hepnn_session hepnn_session; /* scratch memory; one per thread */

/* Element types of inputs and outputs (ONNX's TensorProto codes). bool is one byte, 0 or 1. */
typedef enum hepnn_dtype { HEPNN_FLOAT32 = 1, HEPNN_INT64 = 7, HEPNN_BOOL = 9 } hepnn_dtype;

/* One input: chosen by name, or by index when name is NULL. Shape in elements, row-major data of
 * the input's element type (hepnn_model_input_dtype). */
typedef struct hepnn_input {
  const char* name;
  int32_t index;
  const void* data;
  const int64_t* shape;
  int32_t ndim;
} hepnn_input;

/* One requested output: by name, or by index when name is NULL; capacity in elements of the
 * output's element type (hepnn_model_output_dtype). */
typedef struct hepnn_output {
  const char* name;
  int32_t index;
  void* data;
  int64_t capacity;
} hepnn_output;

HEPNN_API hepnn_status hepnn_model_load(const char* path, hepnn_model** model);
HEPNN_API hepnn_status hepnn_model_load_buffer(const void* data, size_t size, hepnn_model** model);
HEPNN_API void hepnn_model_free(hepnn_model* model);

HEPNN_API int32_t hepnn_model_num_inputs(const hepnn_model* model);
HEPNN_API int32_t hepnn_model_num_outputs(const hepnn_model* model);
/* NULL when index is out of range. The string lives as long as the model. */
HEPNN_API const char* hepnn_model_input_name(const hepnn_model* model, int32_t index);
HEPNN_API const char* hepnn_model_output_name(const hepnn_model* model, int32_t index);
/* The declared input shape; -1 marks a symbolic dimension (the batch, usually). Writes at most
 * capacity dims and the true rank into *ndim. */
HEPNN_API hepnn_status hepnn_model_input_shape(const hepnn_model* model, int32_t index, int64_t* dims,
                                               int32_t capacity, int32_t* ndim);

/* Element type of input / output `index`; 0 when index is out of range. */
HEPNN_API hepnn_dtype hepnn_model_input_dtype(const hepnn_model* model, int32_t index);
HEPNN_API hepnn_dtype hepnn_model_output_dtype(const hepnn_model* model, int32_t index);

/* threads (>= 1): recorded for per-session thread control, which is not implemented yet: kernels
 * share hepnn's global pool, and small batches (the per-event case) run on the calling thread. */
HEPNN_API hepnn_status hepnn_session_create(const hepnn_model* model, int32_t threads, hepnn_session** session);
HEPNN_API void hepnn_session_free(hepnn_session* session);

/* Runs with all model inputs given. Outputs not requested are not copied out. After the first
 * call for a set of input shapes, a call performs no heap allocation. */
HEPNN_API hepnn_status hepnn_session_run(hepnn_session* session, const hepnn_input* inputs, int32_t num_inputs,
                                         hepnn_output* outputs, int32_t num_outputs);
/* Shape of output `index` for the input shapes of the last successful run. */
HEPNN_API hepnn_status hepnn_session_output_shape(const hepnn_session* session, int32_t index, int64_t* dims,
                                                  int32_t capacity, int32_t* ndim);

/* Message of the calling thread's last failed call ("" if none). Valid until the next call. */
HEPNN_API const char* hepnn_last_error(void);

#ifdef __cplusplus
}
#endif
#endif /* HEPNN_HEPNN_H */
