/*
 * tl_harness.c - reads int8 sequences, runs a generated model on them, writes its int8 outputs
 * and, on request, every LSTM state. The protocol and the build switches are in tl_harness.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tl_harness.h"

#define TLH_MODE_RUN 0
#define TLH_MODE_STEP 1
#define TLH_MODE_INTERLEAVE 2

/* One sequence of in.bin and the room for its output. */
typedef struct {
    int32_t steps;
    int32_t len;     /* -1: run() */
    int8_t *x;       /* (steps, input_size) */
    int8_t *y;       /* (steps or 1, output_size), one spare byte */
    size_t y_bytes;  /* what out.bin receives of y */
} tlh_seq_t;

/* The trace of the running sequence: NULL when not tracing. */
static const tlh_model_t *g_model;
static uint8_t *g_trace;
static size_t g_trace_size;
static int32_t g_steps;

static void fail(int code, const char *what)
{
    fprintf(stderr, "harness: %s\n", what);
    exit(code);
}

static void *alloc_filled(size_t bytes, int fill)
{
    void *p = malloc(bytes + 1u);
    if (p == NULL) {
        fail(3, "out of memory");
    }
    memset(p, fill, bytes + 1u);
    return p;
}

/* ---- the trace buffer: per layer and direction, valid[steps], h[steps][H], c[steps][H] ---- */

static size_t block_size(int32_t steps, int32_t hidden)
{
    return (size_t)steps * (1u + 3u * (size_t)hidden);
}

static void trace_begin(const tlh_model_t *m, int32_t steps, int tr)
{
    int32_t li;
    g_model = m;
    g_steps = steps;
    g_trace = NULL;
    g_trace_size = 0;
    if (!tr) {
        return;
    }
    for (li = 0; li < m->layers; ++li) {
        g_trace_size += (size_t)m->dirs[li] * block_size(steps, m->hidden[li]);
    }
    g_trace = (uint8_t *)alloc_filled(g_trace_size, 0);
}

void tlh_trace_record(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c)
{
    size_t off = 0;
    int32_t li, hid;
    if (g_trace == NULL) {
        return;
    }
    for (li = 0; li < g_model->layers && g_model->nodes[li] != node; ++li) {
        off += (size_t)g_model->dirs[li] * block_size(g_steps, g_model->hidden[li]);
    }
    if (li == g_model->layers || direction < 0 || direction >= g_model->dirs[li] || t < 0 || t >= g_steps) {
        fail(4, "trace hook called with a bad node, direction or step");
    }
    hid = g_model->hidden[li];
    off += (size_t)direction * block_size(g_steps, hid);
    g_trace[off + (size_t)t] = 1u;
    memcpy(&g_trace[off + (size_t)g_steps + (size_t)t * (size_t)hid], h, (size_t)hid);
    memcpy(&g_trace[off + (size_t)g_steps * (1u + (size_t)hid) + (size_t)t * 2u * (size_t)hid], c,
           2u * (size_t)hid);
}

/* ---- files ---- */

static int32_t read_i32(FILE *f)
{
    int32_t v;
    if (fread(&v, sizeof v, 1u, f) != 1u) {
        fail(6, "short input");
    }
    return v;
}

static void write_bytes(FILE *f, const void *p, size_t n)
{
    if (n > 0u && fwrite(p, 1u, n, f) != n) {
        fail(5, "write failed");
    }
}

static void read_seq(FILE *f, const tlh_model_t *m, int mode, tlh_seq_t *sq)
{
    size_t x_bytes;
    sq->steps = read_i32(f);
    sq->len = read_i32(f);
    if (sq->steps < 0) {
        fail(6, "negative step count");
    }
    x_bytes = (size_t)sq->steps * (size_t)m->input_size;
    sq->x = (int8_t *)alloc_filled(x_bytes, 0);
    if (fread(sq->x, 1u, x_bytes, f) != x_bytes) {
        fail(6, "short input");
    }
    sq->y_bytes = (mode != TLH_MODE_RUN || m->many_to_many) ? (size_t)sq->steps * (size_t)m->output_size
                                                             : (size_t)m->output_size;
    sq->y = (int8_t *)alloc_filled(sq->y_bytes, 0x77);
}

static void free_seq(tlh_seq_t *sq)
{
    free(sq->y);
    free(sq->x);
}

/* ---- inference ---- */

static void *state_of(const tlh_model_t *m, int32_t slot, int fill)
{
    void *st = (char *)m->states + (size_t)slot * m->state_size;
    memset(st, fill, m->state_size); /* run() and reset() must not rely on a zeroed state */
    return st;
}

/* One sequence through run(), or reset() + step() per step in one counted window (run() and
 * each step() call count their own windows: tl_harness_models.c). */
static void infer(const tlh_model_t *m, int mode, tlh_seq_t *sq)
{
    void *st = state_of(m, 0, 0xA5);
    int32_t t;
    if (mode == TLH_MODE_RUN) {
        m->run(st, sq->x, sq->steps, sq->len, sq->y);
        return;
    }
    TLH_BEGIN();
    m->reset(st);
    for (t = 0; t < sq->steps; ++t) {
        m->step(st, &sq->x[t * m->input_size], &sq->y[t * m->output_size]);
    }
    TLH_END();
}

/* Up to TLH_SLOTS sequences stepped in lock-step, one state each (no windows, no trace). */
static void interleave(const tlh_model_t *m, tlh_seq_t *seqs, int32_t count)
{
    void *st[TLH_SLOTS];
    int32_t t, j, longest = 0;
    for (j = 0; j < count; ++j) {
        st[j] = state_of(m, j, 0x5A);
        m->reset(st[j]);
        longest = seqs[j].steps > longest ? seqs[j].steps : longest;
    }
    for (t = 0; t < longest; ++t) {
        for (j = 0; j < count; ++j) {
            if (t < seqs[j].steps) {
                m->step(st[j], &seqs[j].x[t * m->input_size], &seqs[j].y[t * m->output_size]);
            }
        }
    }
}

int main(int argc, char **argv)
{
    FILE *fin, *fout;
    const tlh_model_t *m;
    tlh_seq_t seqs[TLH_SLOTS];
    int model, mode, tr;
    int32_t n, i, j, group;
    if (argc != 6) {
        fail(2, "usage: harness model mode(0 run, 1 step, 2 interleave) trace(0/1) in.bin out.bin");
    }
    model = atoi(argv[1]);
    mode = atoi(argv[2]);
    tr = atoi(argv[3]);
    if (model < 0 || model >= tlh_model_count) {
        fail(2, "bad model index");
    }
    m = &tlh_models[model];
    if (mode != TLH_MODE_RUN && mode != TLH_MODE_STEP && mode != TLH_MODE_INTERLEAVE) {
        fail(2, "bad mode");
    }
    if (mode != TLH_MODE_RUN && m->step == NULL) {
        fail(2, "this model has no step()");
    }
    if (mode == TLH_MODE_INTERLEAVE && (tr || TLH_SLOTS < 2)) {
        fail(2, "interleave needs TLH_SLOTS > 1 and does not trace");
    }
    if (tr && !m->traced) {
        fail(2, "built without <P>_TRACE: cannot trace");
    }
    fin = fopen(argv[4], "rb");
    fout = fopen(argv[5], "wb");
    if (fin == NULL || fout == NULL) {
        fail(2, "cannot open the input or output file");
    }
    n = read_i32(fin);
    group = mode == TLH_MODE_INTERLEAVE ? TLH_SLOTS : 1;
    for (i = 0; i < n; i += group) {
        const int32_t count = n - i < group ? n - i : group;
        for (j = 0; j < count; ++j) {
            read_seq(fin, m, mode, &seqs[j]);
        }
        if (mode == TLH_MODE_INTERLEAVE) {
            interleave(m, seqs, count);
        } else {
            trace_begin(m, seqs[0].steps, tr);
            infer(m, mode, &seqs[0]);
        }
        for (j = 0; j < count; ++j) {
            write_bytes(fout, seqs[j].y, seqs[j].y_bytes);
            free_seq(&seqs[j]);
        }
        if (g_trace != NULL) {
            write_bytes(fout, g_trace, g_trace_size);
            free(g_trace);
            g_trace = NULL;
        }
    }
    fclose(fin);
    if (fclose(fout) != 0) {
        return 5;
    }
    return 0;
}
