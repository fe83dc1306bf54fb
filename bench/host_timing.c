/* Timing harness for tinylstm's generated C on the host (bench only: it uses stdio, malloc and
 * POSIX clock_gettime; the generated model and runtime files stay untouched).
 *
 * Built by bench/host_timing.py together with a model generated with the prefix "model":
 *     cc -O2 host_timing.c model.c tl_*.c -o host_timing      (the runtime sources: RUNTIME_SOURCES)
 * usage: host_timing in.bin out.bin min_ms repeats seq_repeats   (repeats 0: write the outputs, time nothing)
 *   in.bin : int32 n, then per sequence int32 steps, int32 len (must be -1: run() over every step),
 *            int8 x[steps * MODEL_INPUT_SIZE] (ONNX layout, batch 1): the input file of the test
 *            harness (codegen/harness/tl_harness.h), written by tinylstm.cbuild.protocol
 *   out.bin: per sequence the output of model_run() (MODEL_OUTPUT_SIZE, or steps * MODEL_OUTPUT_SIZE for a
 *            many-to-many model), then, when MODEL_HAS_STEP, per sequence the output of every model_step()
 *            (steps * MODEL_OUTPUT_SIZE). Written from the first, untimed pass.
 *   stdout : "key value..." lines, times in nanoseconds:
 *     steps / sequences   totals of one pass over every sequence
 *     passes              passes per timed sample (chosen so that a sample lasts >= min_ms)
 *     step_pass_ns        one sample per repeat: ns of one pass of reset + step() over every sequence
 *     run_pass_ns         one sample per repeat: ns of one pass of run() over every sequence
 *     seq_run_ns          per sequence: median ns of one run() call over seq_repeats calls
 * Only the model calls are inside the timed windows: reading the input, process start-up and writing
 * the output are outside. A warm-up pass precedes every measurement.
 */
#define _POSIX_C_SOURCE 199309L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

typedef struct {
    int32_t steps;
    int8_t *x;
} seq_t;

static seq_t *g_seqs;
static int32_t g_n;
static int32_t g_max_steps;
static model_state_t g_state;
static int8_t *g_y;
static volatile int8_t g_sink;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

static void fail(const char *what, int code)
{
    fprintf(stderr, "host_timing: %s\n", what);
    exit(code);
}

static int32_t read_i32(FILE *f)
{
    int32_t v;
    if (fread(&v, sizeof v, 1u, f) != 1u) {
        fail("short input", 6);
    }
    return v;
}

static size_t run_out_size(int32_t steps)
{
    return MODEL_MANY_TO_MANY ? (size_t)steps * MODEL_OUTPUT_SIZE : (size_t)MODEL_OUTPUT_SIZE;
}

static void pass_run(void)
{
    int32_t i;
    for (i = 0; i < g_n; ++i) {
        model_run(&g_state, g_seqs[i].x, g_seqs[i].steps, g_y);
        g_sink = g_y[0];
    }
}

#if MODEL_HAS_STEP
static void pass_step(void)
{
    int32_t i, t;
    for (i = 0; i < g_n; ++i) {
        const int8_t *x = g_seqs[i].x;
        model_reset(&g_state);
        for (t = 0; t < g_seqs[i].steps; ++t) {
            model_step(&g_state, &x[t * MODEL_INPUT_SIZE], g_y);
        }
        g_sink = g_y[0];
    }
}
#endif

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Passes per sample so that one sample lasts at least min_ns (doubling from 1). */
static int32_t calibrate(void (*pass)(void), int64_t min_ns)
{
    int32_t k = 1, j;
    for (;;) {
        int64_t t0 = now_ns();
        for (j = 0; j < k; ++j) {
            pass();
        }
        if (now_ns() - t0 >= min_ns || k >= (1 << 24)) {
            return k;
        }
        k *= 2;
    }
}

static void measure(const char *name, void (*pass)(void), int32_t passes, int32_t repeats)
{
    int32_t r, j;
    printf("%s", name);
    for (r = 0; r < repeats; ++r) {
        int64_t t0 = now_ns();
        for (j = 0; j < passes; ++j) {
            pass();
        }
        printf(" %lld", (long long)(now_ns() - t0) / passes);
    }
    printf("\n");
}

static void write_outputs(FILE *f)
{
    int32_t i;
    for (i = 0; i < g_n; ++i) {
        model_run(&g_state, g_seqs[i].x, g_seqs[i].steps, g_y);
        if (fwrite(g_y, 1u, run_out_size(g_seqs[i].steps), f) != run_out_size(g_seqs[i].steps)) {
            fail("write failed", 5);
        }
    }
#if MODEL_HAS_STEP
    for (i = 0; i < g_n; ++i) {
        int32_t t;
        model_reset(&g_state);
        for (t = 0; t < g_seqs[i].steps; ++t) {
            model_step(&g_state, &g_seqs[i].x[t * MODEL_INPUT_SIZE], &g_y[t * MODEL_OUTPUT_SIZE]);
        }
        if (fwrite(g_y, 1u, (size_t)g_seqs[i].steps * MODEL_OUTPUT_SIZE, f) !=
            (size_t)g_seqs[i].steps * MODEL_OUTPUT_SIZE) {
            fail("write failed", 5);
        }
    }
#endif
}

/* Every timing of the harness, printed to stdout (see the top of the file). */
static void time_all(int64_t min_ns, int32_t repeats, int32_t seq_repeats, int64_t *samples)
{
    int32_t i, r, passes;
#if MODEL_HAS_STEP
    passes = calibrate(pass_step, min_ns);
    printf("step_passes %ld\n", (long)passes);
    measure("step_pass_ns", pass_step, passes, repeats);
#endif
    passes = calibrate(pass_run, min_ns);
    printf("run_passes %ld\n", (long)passes);
    measure("run_pass_ns", pass_run, passes, repeats);

    printf("seq_run_ns");
    for (i = 0; i < g_n; ++i) {
        model_run(&g_state, g_seqs[i].x, g_seqs[i].steps, g_y); /* warm-up */
        for (r = 0; r < seq_repeats; ++r) {
            int64_t t0 = now_ns();
            model_run(&g_state, g_seqs[i].x, g_seqs[i].steps, g_y);
            samples[r] = now_ns() - t0;
            g_sink = g_y[0];
        }
        qsort(samples, (size_t)seq_repeats, sizeof *samples, cmp_i64);
        printf(" %lld", (long long)samples[seq_repeats / 2]);
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    FILE *fin, *fout;
    int32_t i, repeats, seq_repeats;
    int64_t min_ns, steps = 0;
    int64_t *samples;
    if (argc != 6) {
        fprintf(stderr, "usage: %s in.bin out.bin min_ms repeats seq_repeats\n", argv[0]);
        return 2;
    }
    min_ns = (int64_t)atoi(argv[3]) * 1000000;
    repeats = atoi(argv[4]);
    seq_repeats = atoi(argv[5]);
    fin = fopen(argv[1], "rb");
    if (fin == NULL || repeats < 0 || seq_repeats < 1) {
        fail("cannot open the input or bad arguments", 2);
    }
    g_n = read_i32(fin);
    if (g_n < 1) {
        fail("no sequences", 2);
    }
    g_seqs = (seq_t *)calloc((size_t)g_n, sizeof *g_seqs);
    if (g_seqs == NULL) {
        fail("out of memory", 3);
    }
    for (i = 0; i < g_n; ++i) {
        size_t bytes;
        g_seqs[i].steps = read_i32(fin);
        if (g_seqs[i].steps < 1) {
            fail("a sequence has no steps", 2);
        }
        if (read_i32(fin) != -1) {
            fail("sequence_lens is not timed (len must be -1)", 2);
        }
        bytes = (size_t)g_seqs[i].steps * MODEL_INPUT_SIZE;
        g_seqs[i].x = (int8_t *)malloc(bytes);
        if (g_seqs[i].x == NULL || fread(g_seqs[i].x, 1u, bytes, fin) != bytes) {
            fail("short input", 6);
        }
        steps += g_seqs[i].steps;
        g_max_steps = g_seqs[i].steps > g_max_steps ? g_seqs[i].steps : g_max_steps;
    }
    fclose(fin);
    g_y = (int8_t *)calloc((size_t)g_max_steps * MODEL_OUTPUT_SIZE + 1u, 1u);
    samples = (int64_t *)calloc((size_t)seq_repeats, sizeof *samples);
    if (g_y == NULL || samples == NULL) {
        fail("out of memory", 3);
    }

    fout = fopen(argv[2], "wb");
    if (fout == NULL) {
        fail("cannot open the output", 2);
    }
    write_outputs(fout); /* also the first warm-up */
    if (fclose(fout) != 0) {
        fail("write failed", 5);
    }
    printf("steps %lld\nsequences %ld\n", (long long)steps, (long)g_n);
    if (repeats > 0) {
        time_all(min_ns, repeats, seq_repeats, samples);
    }
    for (i = 0; i < g_n; ++i) {
        free(g_seqs[i].x);
    }
    free(g_seqs);
    free(g_y);
    free(samples);
    return 0;
}
