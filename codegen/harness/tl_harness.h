/*
 * tl_harness.h - the test harness around tinylstm's generated models, on the host and on the
 * emulated Cortex-M cores (not part of what users ship: it uses stdio and malloc).
 *
 * The program is tl_harness.c (the binary protocol, the trace buffer, main) plus a table of the
 * models it holds, tl_harness_models.c, which tinylstm.cbuild.harness generates for each build:
 * per model its sizes, its live LSTM layers, thin calls into <p>_run / _run_lens / _reset /
 * _step, and the <p>_trace hook (builds with <P>_TRACE) forwarding to tlh_trace_record().
 *
 * Usage: harness model mode trace in.bin out.bin
 *   model  index in tlh_models
 *   mode   0 run() (or run_lens() for a row with len >= 0); 1 reset() then step() per step;
 *          2 like 1 with up to TLH_SLOTS sequences stepped in lock-step (no trace)
 *   trace  1: also write every LSTM state (builds with <P>_TRACE only)
 * in.bin : int32 n, then per sequence int32 steps, int32 len (-1: run(), else run_lens(len)),
 *          int8 x[steps][input_size]
 * out.bin: per sequence int8 y[...] (mode 0: steps * output_size for a many-to-many model, else
 *          output_size; modes 1, 2: steps * output_size, the output after every step), then when
 *          tracing, for every live LSTM layer and direction in the table's order:
 *          uint8 valid[steps], int8 h[steps][H], int16 c[steps][H]
 * Integers are in the machine's byte order (little-endian on the Cortex-M cores). Sequences are
 * read, run and written one at a time (a group of TLH_SLOTS in mode 2): memory is bounded by the
 * longest sequence. The model's state is filled with garbage before run() and reset(): neither
 * may rely on a zeroed state.
 *
 * Builds with TLH_COUNT (the Cortex-M ones) make every inference a tl_bench_begin() ..
 * tl_bench_end() window for the QEMU instruction counter, and in mode 1 every step() call a
 * window nested in it.
 */
#ifndef TL_HARNESS_H
#define TL_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* Model states per model: instances stepped together in mode 2 (the host builds use 3). */
#ifndef TLH_SLOTS
#define TLH_SLOTS 1
#endif

/* Instruction-count windows (tl_target.h): around each call of a model function (the generated
 * calls) and around reset() + every step() of a sequence (tl_harness.c). */
#ifdef TLH_COUNT
#include "tl_target.h"
#define TLH_BEGIN() tl_bench_begin()
#define TLH_END() tl_bench_end()
#else
#define TLH_BEGIN() ((void)0)
#define TLH_END() ((void)0)
#endif

/* One generated model as the harness drives it (one row of tlh_models). */
typedef struct {
    int32_t input_size;   /* <P>_INPUT_SIZE: int8 features per step */
    int32_t output_size;  /* <P>_OUTPUT_SIZE */
    int32_t many_to_many; /* <P>_MANY_TO_MANY: run() writes an output per step */
    int32_t traced;       /* built with <P>_TRACE: the trace hook is linked */
    int32_t layers;       /* live LSTM layers, in the trace order */
    const int32_t *nodes; /* (layers,) the node argument of the trace hook */
    const int32_t *hidden; /* (layers,) H */
    const int32_t *dirs;   /* (layers,) directions, 1 or 2 */
    void *states;          /* (TLH_SLOTS,) <p>_state_t */
    size_t state_size;     /* sizeof(<p>_state_t) */
    /* <p>_run_lens(len) when the model takes sequence_lens and len >= 0, else <p>_run; a window */
    void (*run)(void *state, const int8_t *x, int32_t steps, int32_t len, int8_t *y);
    void (*reset)(void *state);                            /* NULL without step() */
    void (*step)(void *state, const int8_t *x, int8_t *y); /* NULL without step(); a window */
} tlh_model_t;

/* The generated table (tl_harness_models.c). */
extern const tlh_model_t tlh_models[];
extern const int32_t tlh_model_count;

/* Store one LSTM state of the running sequence: what every generated <p>_trace hook calls. */
void tlh_trace_record(int32_t node, int32_t direction, int32_t t, const int8_t *h, const int16_t *c);

#endif /* TL_HARNESS_H */
