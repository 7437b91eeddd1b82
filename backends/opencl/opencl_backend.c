/* OpenCL backend: the kernels of backend.h on an OpenCL device (any vendor's GPU, or the
 * CPU through PoCL, which is how every CI run executes every kernel). Weights are
 * dequantized once at load (from every GGUF type the CPU backend reads) to F32 buffers
 * on the device, except F16 matrices, which stay F16 there (half the memory) and are
 * widened exactly to F32 in a scratch buffer for each product (vload_half, core OpenCL
 * 1.2: no cl_khr_fp16 needed); the KV cache (f32, f16 or q8_0, converted as the CPU
 * backend converts it) and activations live on the device too. Matrix products are CLBlast's
 * SGEMM; the rest are our own OpenCL C 1.2 kernels (kernels.cl).
 * Parameters: device=N (the index `ctxbench info --backend opencl` lists; default 0). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <clblast_c.h>

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "gguf.h"
#include "model.h"
#include "quant.h"

#define MAX_DEVICES 64
#define REDUCE_WG 64            /* work-group size of the row reductions (every device has >= 64) */
#define ATTN_WG_MAX 64          /* query rows per attention work-group, at most */
#define SLAB_BYTES (16u << 20)  /* dequantized weights are uploaded this much at a time */

static const char kernel_source[] =
#include "gen/opencl_kernels.h"
    ;

/* Device memory: an OpenCL buffer of n floats (or int32). */
struct dbuf {
    cl_mem mem;
    size_t n;
};

/* A weight matrix [rows = out features][cols = in features], F32 on the device. */
struct cl_matrix {
    cl_mem mem;
    int rows, cols;
    bool f16;             /* mem holds the file's F16 values, widened per product */
};

struct cl_layer {
    cl_mem attn_norm, ffn_norm, bq, bk, bv;     /* [dim], [dim], biases or NULL */
    struct cl_matrix w[7];                      /* W_Q .. W_DOWN */
};

struct backend {
    const struct model *m;
    int device_index;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    cl_program prog;
    cl_kernel k_embed, k_rmsnorm, k_bias, k_rope, k_add, k_swiglu, k_lsm, k_widen, k_store_f16, k_store_q8_0;
    cl_kernel k_attn[3][3];       /* attention by cache types: [enum kv_type of K][of V] */
    cl_mem widened;               /* [largest F16 matrix] F32: the matrix of the current product */
    size_t widened_elems;
    size_t attn_wg;               /* query rows per attention work-group */
    int tile_k;                   /* keys per attention tile */
    struct cl_layer *layers;      /* n_layers */
    cl_mem tok_embd;              /* [n_vocab][dim] */
    struct cl_matrix output;      /* [n_vocab][dim] */
    cl_mem output_norm;           /* [dim] */
    cl_mem tokens;                /* [tokens_cap] int32: the ids of an embed call */
    int tokens_cap;
    cl_mem logits;                /* [logits_rows][n_vocab]: the vocabulary projection of one block of rows */
    cl_mem targets, logprob;      /* [logits_rows] int32, float */
    int logits_rows;
    char name[128];
    size_t mem_total, mem_used, max_alloc;
    char error[256];              /* the first error since the last sync, "" if none */
};

/* ------------------------------------------------------------------ errors */

static const char *cl_error_name(cl_int rc) {
    switch (rc) {
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_WORK_SIZE: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_KERNEL: return "CL_INVALID_KERNEL";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case -1001: return "no OpenCL platform (CL_PLATFORM_NOT_FOUND_KHR)";
    default: return "OpenCL error";
    }
}

/* Records the first error; true if rc is CL_SUCCESS. */
static bool cl_ok(struct backend *b, cl_int rc, const char *what) {
    if (rc == CL_SUCCESS) return true;
    if (!b->error[0]) snprintf(b->error, sizeof b->error, "OpenCL %s failed: %s (%d)", what, cl_error_name(rc), rc);
    return false;
}

/* ------------------------------------------------------------------ devices */

/* Every device of every platform, in one list: the device=N index. */
static int all_devices(cl_device_id *out, cl_platform_id *plat_of, int cap) {
    cl_platform_id plats[16];
    cl_uint np = 0;
    if (clGetPlatformIDs(16, plats, &np) != CL_SUCCESS) return 0;
    int n = 0;
    for (cl_uint p = 0; p < np && p < 16; p++) {
        cl_device_id devs[MAX_DEVICES];
        cl_uint nd = 0;
        if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, devs, &nd) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < nd && d < MAX_DEVICES && n < cap; d++) {
            out[n] = devs[d];
            if (plat_of) plat_of[n] = plats[p];
            n++;
        }
    }
    return n;
}

static const char *ocl_unavailable(void) {
    cl_device_id devs[MAX_DEVICES];
    if (all_devices(devs, NULL, MAX_DEVICES) == 0)
        return "no OpenCL platform with a device on this machine (a GPU driver's ICD, or Debian's pocl-opencl-icd)";
    return NULL;
}

/* The device used when device= is not given: the first GPU or accelerator (a machine
 * with a GPU usually has PoCL's CPU device too, in no promised order), else device 0.
 * -1 when there is no device. is_gpu: whether it is a GPU or accelerator. */
static int default_device(bool *is_gpu) {
    cl_device_id devs[MAX_DEVICES];
    int n = all_devices(devs, NULL, MAX_DEVICES);
    *is_gpu = false;
    for (int i = 0; i < n; i++) {
        cl_device_type t = 0;
        if (clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof t, &t, NULL) == CL_SUCCESS &&
            (t & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))) {
            *is_gpu = true;
            return i;
        }
    }
    return n > 0 ? 0 : -1;
}

/* How long auto waits for the probe below before it counts OpenCL out. */
#define PROBE_TIMEOUT_MS 30000

/* auto prefers a GPU or accelerator (the device it then runs on by default); a
 * CPU-only OpenCL (PoCL) is for conformance, and the CPU backend is faster there.
 * Asking means loading every vendor's driver (the ICD loader opens them all), which
 * cannot be undone: PoCL alone adds about 60 MB to the process (LLVM) and a fifth of a
 * second. So the question is asked in a child process, which answers one byte and
 * exits; the process that runs the work loads a driver only when it runs on OpenCL.
 * A child that does not answer in time (a hung driver) is killed and counts as no. */
static int ocl_auto_rank(void) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(NULL);   /* the child leaves by _exit, but must not inherit half-written output either */
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        bool gpu = false;
        char answer = default_device(&gpu) >= 0 && gpu ? 'g' : 'n';
        ssize_t w = write(fds[1], &answer, 1);
        _exit(w == 1 ? 0 : 1);
    }
    close(fds[1]);
    char answer = 'n';
    struct pollfd pf = {.fd = fds[0], .events = POLLIN};
    int ready;
    do ready = poll(&pf, 1, PROBE_TIMEOUT_MS);
    while (ready < 0 && errno == EINTR);
    if (ready <= 0 || read(fds[0], &answer, 1) != 1) {
        answer = 'n';
        kill(pid, SIGKILL);
    }
    close(fds[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return answer == 'g' ? 10 : -1;
}

static void ocl_list_devices(FILE *f) {
    cl_device_id devs[MAX_DEVICES];
    cl_platform_id plats[MAX_DEVICES];
    int n = all_devices(devs, plats, MAX_DEVICES);
    if (n == 0) fprintf(f, "opencl: %s\n", ocl_unavailable());
    for (int i = 0; i < n; i++) {
        char name[128] = "?", pname[128] = "?", ver[64] = "?", ext[16384] = "";
        cl_ulong mem = 0, alloc = 0;
        cl_device_type t = 0;
        clGetDeviceInfo(devs[i], CL_DEVICE_NAME, sizeof name, name, NULL);
        clGetPlatformInfo(plats[i], CL_PLATFORM_NAME, sizeof pname, pname, NULL);
        clGetDeviceInfo(devs[i], CL_DEVICE_OPENCL_C_VERSION, sizeof ver, ver, NULL);
        clGetDeviceInfo(devs[i], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
        clGetDeviceInfo(devs[i], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL);
        clGetDeviceInfo(devs[i], CL_DEVICE_TYPE, sizeof t, &t, NULL);
        clGetDeviceInfo(devs[i], CL_DEVICE_EXTENSIONS, sizeof ext, ext, NULL);
        fprintf(f, "opencl: device %d: %s (%s), %s, %llu MiB memory (largest buffer %llu MiB), %s, fp16 %s\n", i,
                name, pname, t & CL_DEVICE_TYPE_GPU ? "GPU" : t & CL_DEVICE_TYPE_CPU ? "CPU" : "accelerator",
                (unsigned long long)(mem >> 20), (unsigned long long)(alloc >> 20), ver,
                strstr(ext, "cl_khr_fp16") ? "yes" : "no");
    }
}

/* ------------------------------------------------------------------ buffers */

static cl_mem new_buffer(struct backend *b, size_t bytes, const void *init, char *err, size_t errlen) {
    if (bytes == 0) bytes = 4;
    if (bytes > b->max_alloc) {
        snprintf(err, errlen, "OpenCL: a buffer of %zu MiB exceeds the device's largest (%zu MiB)", bytes >> 20,
                 b->max_alloc >> 20);
        return NULL;
    }
    cl_int rc;
    cl_mem mem = clCreateBuffer(b->ctx, CL_MEM_READ_WRITE | (init ? CL_MEM_COPY_HOST_PTR : 0), bytes, (void *)init, &rc);
    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "OpenCL: cannot allocate %zu MiB on %s: %s (%d)", bytes >> 20, b->name,
                 cl_error_name(rc), rc);
        return NULL;
    }
    b->mem_used += bytes;
    return mem;
}

static void free_buffer(struct backend *b, cl_mem mem, size_t bytes) {
    if (!mem) return;
    clReleaseMemObject(mem);
    b->mem_used -= bytes ? bytes : 4;
}

static struct dbuf *ocl_alloc(struct backend *b, size_t n, char *err, size_t errlen) {
    struct dbuf *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->mem = new_buffer(b, n * sizeof(float), NULL, err, errlen);
    if (!d->mem) {
        free(d);
        return NULL;
    }
    d->n = n;
    return d;
}

static void ocl_release(struct backend *b, struct dbuf *d) {
    free_buffer(b, d->mem, d->n * sizeof(float));
    free(d);
}

static void ocl_write(struct backend *b, struct dbuf *d, size_t off, const void *src, size_t n) {
    if (b->error[0] || n == 0) return;
    /* blocking: the caller reuses src at once */
    cl_ok(b, clEnqueueWriteBuffer(b->queue, d->mem, CL_TRUE, off * sizeof(float), n * sizeof(float), src, 0, NULL, NULL),
          "write");
}

static void ocl_copy(struct backend *b, struct dbuf *dst, size_t dst_off, const struct dbuf *src, size_t src_off,
                     size_t n) {
    if (b->error[0] || n == 0) return;
    cl_ok(b, clEnqueueCopyBuffer(b->queue, src->mem, dst->mem, src_off * sizeof(float), dst_off * sizeof(float),
                                 n * sizeof(float), 0, NULL, NULL), "copy");
}


static int ocl_sync(struct backend *b, char *err, size_t errlen) {
    cl_ok(b, clFinish(b->queue), "finish");
    if (!b->error[0]) return 0;
    snprintf(err, errlen, "%s", b->error);
    b->error[0] = 0;
    return -1;
}

static int ocl_read(struct backend *b, const struct dbuf *d, size_t off, void *dst, size_t n, char *err,
                    size_t errlen) {
    if (n && !b->error[0])
        cl_ok(b, clEnqueueReadBuffer(b->queue, d->mem, CL_TRUE, off * sizeof(float), n * sizeof(float), dst, 0, NULL,
                                     NULL), "read");
    return ocl_sync(b, err, errlen);
}

/* ------------------------------------------------------------------ create */

/* A weight tensor dequantized to F32 on the device, SLAB_BYTES of rows at a time. */
static cl_mem upload_tensor(struct backend *b, const struct gguf_tensor *t, char *err, size_t errlen) {
    const uint64_t cols = t->ne[0], rows = t->n_dims > 1 ? t->ne[1] : 1;
    const size_t row_bytes = ggml_row_bytes(t->type, cols);
    if (t->type == GGML_TYPE_F32) return new_buffer(b, (size_t)(rows * cols) * sizeof(float), t->data, err, errlen);
    cl_mem mem = new_buffer(b, (size_t)(rows * cols) * sizeof(float), NULL, err, errlen);
    if (!mem) return NULL;
    size_t slab_rows = SLAB_BYTES / (cols * sizeof(float));
    if (slab_rows < 1) slab_rows = 1;
    float *slab = malloc(slab_rows * cols * sizeof(float));
    if (!slab) {
        snprintf(err, errlen, "out of memory dequantizing %.*s", (int)t->name.len, t->name.ptr);
        free_buffer(b, mem, (size_t)(rows * cols) * sizeof(float));
        return NULL;
    }
    for (uint64_t r0 = 0; r0 < rows; r0 += slab_rows) {
        size_t nr = rows - r0 < slab_rows ? (size_t)(rows - r0) : slab_rows;
        for (size_t r = 0; r < nr; r++)
            dequantize_row(t->type, (const uint8_t *)t->data + (size_t)(r0 + r) * row_bytes, slab + r * cols,
                           (size_t)cols);
        cl_int rc = clEnqueueWriteBuffer(b->queue, mem, CL_TRUE, (size_t)(r0 * cols) * sizeof(float),
                                         nr * cols * sizeof(float), slab, 0, NULL, NULL);
        if (rc != CL_SUCCESS) {
            snprintf(err, errlen, "OpenCL: uploading %.*s failed: %s (%d)", (int)t->name.len, t->name.ptr,
                     cl_error_name(rc), rc);
            free(slab);
            free_buffer(b, mem, (size_t)(rows * cols) * sizeof(float));
            return NULL;
        }
    }
    free(slab);
    return mem;
}

static int upload_matrix(struct backend *b, struct cl_matrix *w, const struct gguf_tensor *t, char *err,
                         size_t errlen) {
    w->cols = (int)t->ne[0];
    w->rows = (int)t->ne[1];
    if (t->type == GGML_TYPE_F16) {
        const size_t elems = (size_t)w->rows * (size_t)w->cols;
        w->f16 = true;
        w->mem = new_buffer(b, elems * 2, t->data, err, errlen);
        if (elems > b->widened_elems) b->widened_elems = elems;
        return w->mem ? 0 : -1;
    }
    w->mem = upload_tensor(b, t, err, errlen);
    return w->mem ? 0 : -1;
}

static void ocl_destroy(struct backend *b) {
    if (!b) return;
    const struct model_config *c = &b->m->cfg;
    if (b->layers)
        for (int l = 0; l < c->n_layers; l++) {
            struct cl_layer *L = &b->layers[l];
            cl_mem vs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv};
            for (int i = 0; i < 5; i++)
                if (vs[i]) clReleaseMemObject(vs[i]);
            for (int i = 0; i < 7; i++)
                if (L->w[i].mem) clReleaseMemObject(L->w[i].mem);
        }
    free(b->layers);
    if (b->output.mem && b->output.mem != b->tok_embd) clReleaseMemObject(b->output.mem);   /* tied: one buffer */
    cl_mem ms[] = {b->tok_embd, b->output_norm, b->tokens, b->logits, b->targets, b->logprob, b->widened};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        if (ms[i]) clReleaseMemObject(ms[i]);
    cl_kernel ks[] = {b->k_embed, b->k_rmsnorm, b->k_bias, b->k_rope, b->k_add, b->k_swiglu, b->k_lsm, b->k_widen,
                      b->k_store_f16, b->k_store_q8_0};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (ks[i]) clReleaseKernel(ks[i]);
    for (int i = 0; i < 9; i++)
        if (b->k_attn[i / 3][i % 3]) clReleaseKernel(b->k_attn[i / 3][i % 3]);
    if (b->prog) clReleaseProgram(b->prog);
    CLBlastClearCache();   /* its compiled kernels hold this context */
    if (b->queue) clReleaseCommandQueue(b->queue);
    if (b->ctx) clReleaseContext(b->ctx);
    free(b);
}

static int build_program(struct backend *b, char *err, size_t errlen) {
    const struct model_config *c = &b->m->cfg;
    cl_ulong local_mem = 0;
    clGetDeviceInfo(b->device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    /* three tiles of keys (K, V, grouped K) in at most half the local memory */
    int tile_k = 64;
    while (tile_k > 1 && (cl_ulong)tile_k * (3 * (cl_ulong)c->head_dim + 1) * 4 > local_mem / 2) tile_k /= 2;
    b->tile_k = tile_k;
    char opts[160];
    snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DHEAD_DIM=%d -DTILE_K=%d -DWG=%d", c->head_dim, tile_k, REDUCE_WG);
    const char *src = kernel_source;
    cl_int rc;
    b->prog = clCreateProgramWithSource(b->ctx, 1, &src, NULL, &rc);
    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "OpenCL: cannot create the program: %s (%d)", cl_error_name(rc), rc);
        return -1;
    }
    rc = clBuildProgram(b->prog, 1, &b->device, opts, NULL, NULL);
    if (rc != CL_SUCCESS) {
        /* the compiler's first lines, on one line */
        size_t len = 0;
        clGetProgramBuildInfo(b->prog, b->device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len);
        char *log = len ? malloc(len + 1) : NULL;
        if (log && clGetProgramBuildInfo(b->prog, b->device, CL_PROGRAM_BUILD_LOG, len, log, NULL) == CL_SUCCESS) {
            log[len] = 0;
            for (char *p = log; *p; p++)
                if (*p == '\n' || *p == '\r') *p = ' ';
        }
        snprintf(err, errlen, "OpenCL: the kernels do not build on %s: %.300s", b->name, log ? log : "(no log)");
        free(log);
        return -1;
    }
    struct { cl_kernel *k; const char *name; } ks[] = {
        {&b->k_embed, "embed_rows"}, {&b->k_rmsnorm, "rmsnorm_rows"}, {&b->k_bias, "add_bias_rows"},
        {&b->k_rope, "rope_rows"}, {&b->k_add, "add_rows"}, {&b->k_swiglu, "swiglu_rows"},
        {&b->k_lsm, "log_softmax_rows"}, {&b->k_widen, "widen_f16"}, {&b->k_store_f16, "store_f16"},
        {&b->k_store_q8_0, "store_q8_0"},
    };
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++) {
        *ks[i].k = clCreateKernel(b->prog, ks[i].name, &rc);
        if (rc != CL_SUCCESS) {
            snprintf(err, errlen, "OpenCL: kernel %s: %s (%d)", ks[i].name, cl_error_name(rc), rc);
            return -1;
        }
    }
    /* attention_K_V for every pair of cache types, one work-group size for all of them:
     * the smallest they allow */
    size_t wg = SIZE_MAX;
    for (int i = 0; i < 9; i++) {
        char name[64];
        snprintf(name, sizeof name, "attention_%s_%s", kv_type_name((enum kv_type)(i / 3)),
                 kv_type_name((enum kv_type)(i % 3)));
        b->k_attn[i / 3][i % 3] = clCreateKernel(b->prog, name, &rc);
        if (rc != CL_SUCCESS) {
            snprintf(err, errlen, "OpenCL: kernel %s: %s (%d)", name, cl_error_name(rc), rc);
            return -1;
        }
        size_t w = 0;
        clGetKernelWorkGroupInfo(b->k_attn[i / 3][i % 3], b->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof w, &w, NULL);
        if (w < wg) wg = w;
    }
    b->attn_wg = 1;
    while (b->attn_wg * 2 <= wg && b->attn_wg * 2 <= ATTN_WG_MAX) b->attn_wg *= 2;
    size_t red = 0;
    clGetKernelWorkGroupInfo(b->k_rmsnorm, b->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof red, &red, NULL);
    if (red < REDUCE_WG) {
        snprintf(err, errlen, "OpenCL: %s runs at most %zu work-items per group, the kernels need %d", b->name, red,
                 REDUCE_WG);
        return -1;
    }
    return 0;
}

static const char *const ocl_params[] = {"device", NULL};

static struct backend *ocl_create(const struct model *m, const char *params, char *err, size_t errlen) {
    const struct model_config *c = &m->cfg;
    long dev_index;
    if (backend_params_check("opencl", params, ocl_params, err, errlen) ||
        backend_param_long("opencl", params, "device", 0, MAX_DEVICES - 1, -1, &dev_index, err, errlen))
        return NULL;
    bool gpu;
    if (dev_index < 0) dev_index = default_device(&gpu);
    cl_device_id devs[MAX_DEVICES];
    int n_dev = all_devices(devs, NULL, MAX_DEVICES);
    if (n_dev == 0 || dev_index < 0) {
        snprintf(err, errlen, "backend opencl: %s", ocl_unavailable());
        return NULL;
    }
    if (dev_index >= n_dev) {
        snprintf(err, errlen, "backend opencl: device=%ld, but this machine has %d OpenCL device%s (0..%d)", dev_index,
                 n_dev, n_dev == 1 ? "" : "s", n_dev - 1);
        return NULL;
    }
    struct backend *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory creating the OpenCL backend");
        return NULL;
    }
    b->m = m;
    b->device_index = (int)dev_index;
    b->device = devs[dev_index];
    clGetDeviceInfo(b->device, CL_DEVICE_NAME, sizeof b->name, b->name, NULL);
    cl_ulong mem = 0, alloc = 0;
    clGetDeviceInfo(b->device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
    clGetDeviceInfo(b->device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof alloc, &alloc, NULL);
    b->mem_total = (size_t)mem;
    b->max_alloc = (size_t)alloc;
    cl_int rc;
    b->ctx = clCreateContext(NULL, 1, &b->device, NULL, NULL, &rc);
    if (rc == CL_SUCCESS) b->queue = clCreateCommandQueue(b->ctx, b->device, 0, &rc);
    if (rc != CL_SUCCESS) {
        snprintf(err, errlen, "OpenCL: cannot open %s: %s (%d)", b->name, cl_error_name(rc), rc);
        goto fail;
    }
    if (build_program(b, err, errlen) != 0) goto fail;

    /* Every weight on the device (F16 matrices at 2 bytes, the rest at 4): does it fit? */
    uint64_t weight_bytes = (uint64_t)c->n_vocab * c->dim * 4;   /* the embedding table, always F32 */
    if (!c->tied_output) weight_bytes += m->output->ne[0] * m->output->ne[1] * (m->output->type == GGML_TYPE_F16 ? 2 : 4);
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        const struct gguf_tensor *ts[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++) weight_bytes += ts[i]->ne[0] * ts[i]->ne[1] * (ts[i]->type == GGML_TYPE_F16 ? 2 : 4);
    }
    if (weight_bytes > b->mem_total) {
        snprintf(err, errlen, "OpenCL: the weights need %llu MiB on the device but %s has %zu MiB",
                 (unsigned long long)(weight_bytes >> 20), b->name, b->mem_total >> 20);
        goto fail;
    }
    b->layers = calloc((size_t)c->n_layers, sizeof *b->layers);
    if (!b->layers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int l = 0; l < c->n_layers; l++) {
        const struct layer_weights *w = &m->layers[l];
        struct cl_layer *L = &b->layers[l];
        const struct gguf_tensor *ts[] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        for (int i = 0; i < 7; i++)
            if (upload_matrix(b, &L->w[i], ts[i], err, errlen) != 0) goto fail;
        if (!(L->attn_norm = upload_tensor(b, w->attn_norm, err, errlen)) ||
            !(L->ffn_norm = upload_tensor(b, w->ffn_norm, err, errlen)))
            goto fail;
        if (w->bq && (!(L->bq = upload_tensor(b, w->bq, err, errlen)) || !(L->bk = upload_tensor(b, w->bk, err, errlen)) ||
                      !(L->bv = upload_tensor(b, w->bv, err, errlen))))
            goto fail;
    }
    if (!(b->tok_embd = upload_tensor(b, m->tok_embd, err, errlen))) goto fail;
    if (m->output == m->tok_embd) {   /* tied: one buffer, F32 */
        b->output = (struct cl_matrix){b->tok_embd, c->n_vocab, c->dim, false};
    } else if (upload_matrix(b, &b->output, m->output, err, errlen) != 0) {
        goto fail;
    }
    if (!(b->output_norm = upload_tensor(b, m->output_norm, err, errlen))) goto fail;
    if (b->widened_elems && !(b->widened = new_buffer(b, b->widened_elems * sizeof(float), NULL, err, errlen))) goto fail;
    size_t rows = ((size_t)16 << 20) / ((size_t)c->n_vocab * sizeof(float));
    b->logits_rows = (int)(rows < 1 ? 1 : rows > 512 ? 512 : rows);
    b->tokens_cap = 512;
    if (!(b->tokens = new_buffer(b, (size_t)b->tokens_cap * sizeof(int32_t), NULL, err, errlen)) ||
        !(b->logits = new_buffer(b, (size_t)b->logits_rows * c->n_vocab * sizeof(float), NULL, err, errlen)) ||
        !(b->targets = new_buffer(b, (size_t)b->logits_rows * sizeof(int32_t), NULL, err, errlen)) ||
        !(b->logprob = new_buffer(b, (size_t)b->logits_rows * sizeof(float), NULL, err, errlen)))
        goto fail;
    return b;
fail:
    ocl_destroy(b);
    return NULL;
}

static void ocl_device(const struct backend *b, struct device_info *out) {
    snprintf(out->name, sizeof out->name, "%s", b->name);
    snprintf(out->params, sizeof out->params, "device=%d", b->device_index);
    out->mem_total = b->mem_total;
    out->mem_free = b->mem_total > b->mem_used ? b->mem_total - b->mem_used : 0;
    out->max_buffer = b->max_alloc;
    out->n_threads = 0;
}

static const char *ocl_cannot_run(const struct backend *b, const struct forward_plan *plan,
                                  const struct kv_types *kv) {
    (void)b; (void)plan; (void)kv;
    /* every method's plan (RoPE tables, SWA and SelfExtend are all in the kernels) and
     * every cache type (the engine checks that the model's heads fit q8_0) */
    return NULL;
}

/* ------------------------------------------------------------------ kernels */

/* Sets a kernel's arguments from (size, pointer) pairs and runs it over gws (x ly). */
struct karg {
    size_t size;
    const void *ptr;
};
static void run_kernel(struct backend *b, cl_kernel k, const char *name, const struct karg *args, int n_args,
                       size_t gws0, size_t gws1, size_t lws0) {
    if (b->error[0] || gws0 == 0) return;
    for (int i = 0; i < n_args; i++)
        if (!cl_ok(b, clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr), name)) return;
    size_t gws[2] = {gws0, gws1 ? gws1 : 1}, lws[2] = {lws0, 1};
    cl_ok(b, clEnqueueNDRangeKernel(b->queue, k, 2, NULL, gws, lws0 ? lws : NULL, 0, NULL, NULL), name);
}
#define ARG(x) {sizeof(x), &(x)}

static cl_mem weight_vec(const struct backend *b, int layer, enum vec_id v) {
    if (v == V_OUTPUT_NORM) return b->output_norm;
    const struct cl_layer *L = &b->layers[layer];
    const cl_mem vs[] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv};
    return vs[v];
}

static void ocl_embed(struct backend *b, struct dbuf *x, const int32_t *tokens, int n) {
    if (b->error[0]) return;
    if (n > b->tokens_cap) {   /* the engine's chunks fit; a longer call gets a longer buffer */
        char err[256];
        cl_mem bigger = new_buffer(b, (size_t)n * sizeof(int32_t), NULL, err, sizeof err);
        if (!bigger) {
            snprintf(b->error, sizeof b->error, "%s", err);
            return;
        }
        free_buffer(b, b->tokens, (size_t)b->tokens_cap * sizeof(int32_t));
        b->tokens = bigger;
        b->tokens_cap = n;
    }
    const int dim = b->m->cfg.dim;
    /* blocking, and behind every earlier kernel in the in-order queue: the last embed has read them */
    if (!cl_ok(b, clEnqueueWriteBuffer(b->queue, b->tokens, CL_TRUE, 0, (size_t)n * sizeof(int32_t), tokens, 0, NULL,
                                       NULL), "write tokens"))
        return;
    struct karg a[] = {ARG(x->mem), ARG(b->tok_embd), ARG(b->tokens), ARG(dim)};
    run_kernel(b, b->k_embed, "embed_rows", a, 4, (size_t)n * dim, 0, 0);
}

static void ocl_rmsnorm(struct backend *b, struct dbuf *y, const struct dbuf *x, int layer, enum vec_id w, int n) {
    cl_mem wv = weight_vec(b, layer, w);
    const int dim = b->m->cfg.dim;
    const float eps = (float)b->m->cfg.rms_eps;
    struct karg a[] = {ARG(y->mem), ARG(x->mem), ARG(wv), ARG(dim), ARG(eps)};
    run_kernel(b, b->k_rmsnorm, "rmsnorm_rows", a, 5, (size_t)n * REDUCE_WG, 0, REDUCE_WG);
}

/* The F32 values of W for a product: its own buffer, or an F16 matrix widened into
 * the scratch buffer (the in-order queue finishes each product before the next widening). */
static cl_mem matrix_f32(struct backend *b, const struct cl_matrix *W) {
    if (!W->f16) return W->mem;
    struct karg a[] = {ARG(b->widened), ARG(W->mem)};
    run_kernel(b, b->k_widen, "widen_f16", a, 2, (size_t)W->rows * W->cols, 0, 0);
    return b->widened;
}

static void ocl_matmul(struct backend *b, struct dbuf *y, size_t y_off, const struct dbuf *x, int layer,
                       enum weight_id w, int n) {
    if (b->error[0]) return;
    const struct cl_matrix *W = w == W_OUTPUT ? &b->output : &b->layers[layer].w[w];
    cl_mem wm = matrix_f32(b, W);
    if (b->error[0]) return;
    /* y[n][rows] = x[n][cols] . W^T, W row-major [rows][cols] */
    CLBlastStatusCode rc = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)n,
                                        (size_t)W->rows, (size_t)W->cols, 1.0f, x->mem, 0, (size_t)W->cols, wm, 0,
                                        (size_t)W->cols, 0.0f, y->mem, y_off, (size_t)W->rows, &b->queue, NULL);
    if (rc != CLBlastSuccess && !b->error[0])
        snprintf(b->error, sizeof b->error, "CLBlast SGEMM (%d x %d x %d) failed with status %d", n, W->rows, W->cols,
                 (int)rc);
}

static void ocl_add_bias(struct backend *b, struct dbuf *y, size_t y_off, int layer, enum vec_id w, int n) {
    const struct model_config *c = &b->m->cfg;
    const int width = (w == V_BQ ? c->n_heads : c->n_kv_heads) * c->head_dim;
    cl_mem bias = weight_vec(b, layer, w);
    cl_ulong off = y_off;
    struct karg a[] = {ARG(y->mem), ARG(off), ARG(bias), ARG(width)};
    run_kernel(b, b->k_bias, "add_bias_rows", a, 4, (size_t)n * width, 0, 0);
}

static void ocl_rope(struct backend *b, struct dbuf *x, size_t off, int n, int n_heads, const struct dbuf *cos_sin) {
    const struct model_config *c = &b->m->cfg;
    const int half = c->n_rot / 2;
    const int first_step = c->rope_style == ROPE_NEOX ? 1 : 2, partner = c->rope_style == ROPE_NEOX ? half : 1;
    cl_ulong o = off;
    struct karg a[] = {ARG(x->mem), ARG(o), ARG(cos_sin->mem), ARG(n_heads), ARG(half), ARG(first_step), ARG(partner)};
    run_kernel(b, b->k_rope, "rope_rows", a, 7, (size_t)n * n_heads * half, 0, 0);
}

static void ocl_attention(struct backend *b, const struct attn_call *at) {
    const struct model_config *c = &b->m->cfg;
    cl_mem qg = at->q_group ? at->q_group->mem : at->q->mem, kg = at->k_group ? at->k_group->mem : at->k->mem;
    cl_int has_group = at->q_group != NULL;
    cl_ulong kv_off = at->kv_row * c->n_kv_heads * c->head_dim;
    cl_int gw = at->group_window, nq = at->n_q, nkv = at->n_kv, nh = c->n_heads, nkvh = c->n_kv_heads, win = at->window;
    cl_float scale = at->scale;
    struct karg a[] = {ARG(at->q->mem), ARG(at->k->mem), ARG(at->v->mem), ARG(kv_off), ARG(qg), ARG(kg),
                       ARG(has_group), ARG(gw), ARG(at->q_pos->mem), ARG(at->k_pos->mem), ARG(nq), ARG(nkv),
                       ARG(nh), ARG(nkvh), ARG(scale), ARG(win), ARG(at->out->mem)};
    size_t rows = ((size_t)at->n_q + b->attn_wg - 1) / b->attn_wg * b->attn_wg;
    run_kernel(b, b->k_attn[at->kv.k][at->kv.v], "attention", a, 17, rows, (size_t)c->n_heads, b->attn_wg);
}

/* Rows into a cache of type t, converted as the CPU backend converts them. */
static void ocl_kv_store(struct backend *b, struct dbuf *cache, enum kv_type t, size_t row, const struct dbuf *src,
                         int n) {
    const size_t kvd = (size_t)b->m->cfg.n_kv_heads * b->m->cfg.head_dim;
    if (t == KV_F32) {
        ocl_copy(b, cache, row * kvd, src, 0, (size_t)n * kvd);
    } else if (t == KV_F16) {
        cl_ulong off = row * kvd;   /* in halves */
        struct karg a[] = {ARG(cache->mem), ARG(off), ARG(src->mem)};
        run_kernel(b, b->k_store_f16, "store_f16", a, 3, (size_t)n * kvd, 0, 0);
    } else {   /* q8_0: kvd is a multiple of 32 (the engine refuses other shapes) */
        cl_ulong block0 = row * (kvd / 32);
        struct karg a[] = {ARG(cache->mem), ARG(block0), ARG(src->mem)};
        run_kernel(b, b->k_store_q8_0, "store_q8_0", a, 3, (size_t)n * (kvd / 32), 0, 0);
    }
}

static void ocl_add(struct backend *b, struct dbuf *x, const struct dbuf *y, size_t n) {
    struct karg a[] = {ARG(x->mem), ARG(y->mem)};
    run_kernel(b, b->k_add, "add_rows", a, 2, n, 0, 0);
}

static void ocl_swiglu(struct backend *b, struct dbuf *gate, const struct dbuf *up, size_t n) {
    struct karg a[] = {ARG(gate->mem), ARG(up->mem)};
    run_kernel(b, b->k_swiglu, "swiglu_rows", a, 2, n, 0, 0);
}

static int ocl_score(struct backend *b, const struct dbuf *x, int n, const int32_t *targets, float *logprob,
                     float *last_logits, char *err, size_t errlen) {
    const struct model_config *c = &b->m->cfg;
    for (int r0 = 0; r0 < n && !b->error[0]; r0 += b->logits_rows) {
        int nr = n - r0 < b->logits_rows ? n - r0 : b->logits_rows;
        bool need_last = last_logits && r0 + nr == n;
        if (!score_block_needed(targets, logprob, r0, nr, need_last)) continue;
        /* logits[nr][vocab] = x[r0 .. r0+nr][dim] . output^T */
        cl_mem wout = matrix_f32(b, &b->output);
        if (b->error[0]) break;
        CLBlastStatusCode rc = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeYes, (size_t)nr,
                                            (size_t)c->n_vocab, (size_t)c->dim, 1.0f, x->mem, (size_t)r0 * c->dim,
                                            (size_t)c->dim, wout, 0, (size_t)c->dim, 0.0f, b->logits, 0,
                                            (size_t)c->n_vocab, &b->queue, NULL);
        if (rc != CLBlastSuccess) {
            snprintf(b->error, sizeof b->error, "CLBlast SGEMM of the vocabulary projection failed with status %d",
                     (int)rc);
            break;
        }
        if (targets) {
            if (!cl_ok(b, clEnqueueWriteBuffer(b->queue, b->targets, CL_TRUE, 0, (size_t)nr * sizeof(int32_t),
                                               targets + r0, 0, NULL, NULL), "write targets"))
                break;
            int nv = c->n_vocab;
            struct karg a[] = {ARG(b->logits), ARG(nv), ARG(b->targets), ARG(b->logprob)};
            run_kernel(b, b->k_lsm, "log_softmax_rows", a, 4, (size_t)nr * REDUCE_WG, 0, REDUCE_WG);
            if (b->error[0]) break;
            cl_ok(b, clEnqueueReadBuffer(b->queue, b->logprob, CL_TRUE, 0, (size_t)nr * sizeof(float), logprob + r0, 0,
                                         NULL, NULL), "read log-probabilities");
        }
        if (need_last && !b->error[0])
            cl_ok(b, clEnqueueReadBuffer(b->queue, b->logits, CL_TRUE, (size_t)(nr - 1) * c->n_vocab * sizeof(float),
                                         (size_t)c->n_vocab * sizeof(float), last_logits, 0, NULL, NULL), "read logits");
    }
    return ocl_sync(b, err, errlen);
}

const struct backend_ops backend_opencl = {
    .name = "opencl",
    .params_help = "device=N",
    .unavailable = ocl_unavailable,
    .auto_rank = ocl_auto_rank,
    .list_devices = ocl_list_devices,
    .create = ocl_create,
    .destroy = ocl_destroy,
    .device = ocl_device,
    .cannot_run = ocl_cannot_run,
    .alloc = ocl_alloc,
    .release = ocl_release,
    .write = ocl_write,
    .read = ocl_read,
    .copy = ocl_copy,
    .sync = ocl_sync,
    .embed = ocl_embed,
    .rmsnorm = ocl_rmsnorm,
    .matmul = ocl_matmul,
    .add_bias = ocl_add_bias,
    .rope = ocl_rope,
    .kv_store = ocl_kv_store,
    .attention = ocl_attention,
    .add = ocl_add,
    .swiglu = ocl_swiglu,
    .score = ocl_score,
};
