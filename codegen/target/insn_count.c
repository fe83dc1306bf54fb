/*
 * insn_count.c - QEMU TCG plugin (plugin API version 1, QEMU 4.2 .. 7.2) counting the guest
 * instructions executed between marker functions.
 *
 *   qemu-system-arm ... -plugin insn_count.so,begin=0x<addr>,end=0x<addr>,out=<file>
 *
 * Every translated instruction gets an inline "counter += 1" (exact: an instruction counts
 * when it starts executing, whatever block it sits in). The first instruction of the begin
 * and end markers also gets a callback that snapshots the counter. A window runs from a
 * call of begin to the next call of end; windows nest (a stack of open windows). A window's
 * count is end_snapshot - begin_snapshot - 2: an empty window, `tl_bench_begin();
 * tl_bench_end();`, counts 0 (begin's `bx lr` and the call to end are the two removed).
 *
 * Output: one line per window in the order the windows were opened, "<count> <depth>"
 * (depth 0 = outermost), written when each outermost window closes (so a run that is
 * killed keeps what it finished), then a last line "total <instructions>" at exit.
 * An end without an open window is ignored; a window still open at exit is not reported
 * (nor any window opened after it).
 *
 * Debian ships QEMU without qemu-plugin.h, so the few API declarations used are below,
 * written against the version-1 ABI: 64-bit plugin id, opaque tb/insn handles, callbacks
 * taking (vcpu_index, userdata), and the pointer-based inline op.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- plugin API, version 1 (declared here; must match the QEMU binary) ---------------- */
#define TL_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;

typedef struct {
    const char *target_name;
    struct {
        int min;
        int cur;
    } version;
    _Bool system_emulation;
    union { /* anonymous in QEMU's header; same layout */
        struct {
            int smp_vcpus;
            int max_vcpus;
        } system;
    } u;
} qemu_info_t;

struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op, void *ptr, uint64_t imm);
void qemu_plugin_outs(const char *string);

TL_EXPORT int qemu_plugin_version = 1;
TL_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                  char **argv);

/* ---- state ------------------------------------------------------------------------------- */
#define TL_MARKER_INSNS 2u /* begin's `bx lr` + the call to end */
#define TL_MAX_DEPTH 64

typedef struct {
    uint64_t start; /* counter at begin */
    uint64_t count; /* instructions in the window, once closed */
    int depth;
    int closed;
} window_t;

static uint64_t insn_counter; /* every executed instruction (inline add) */
static uint64_t begin_addr = UINT64_MAX;
static uint64_t end_addr = UINT64_MAX;
static FILE *out;

static window_t *windows;
static size_t n_windows, cap_windows;
static size_t next_to_write; /* windows before this index are in the file */
static size_t open_stack[TL_MAX_DEPTH];
static int n_open;
static int overflowed;

static void on_begin(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (n_open == TL_MAX_DEPTH) {
        overflowed = 1;
        return;
    }
    if (n_windows == cap_windows) {
        size_t cap = cap_windows ? 2 * cap_windows : 1024;
        window_t *w = realloc(windows, cap * sizeof *w);
        if (w == NULL) {
            overflowed = 1;
            return;
        }
        windows = w;
        cap_windows = cap;
    }
    windows[n_windows].start = insn_counter;
    windows[n_windows].count = 0;
    windows[n_windows].depth = n_open;
    windows[n_windows].closed = 0;
    open_stack[n_open++] = n_windows++;
}

static void write_closed_windows(void)
{
    for (; next_to_write < n_windows && windows[next_to_write].closed; next_to_write++) {
        fprintf(out, "%llu %d\n", (unsigned long long)windows[next_to_write].count,
                windows[next_to_write].depth);
    }
}

static void on_end(unsigned int vcpu_index, void *userdata)
{
    window_t *w;
    (void)vcpu_index;
    (void)userdata;
    if (n_open == 0) {
        return;
    }
    w = &windows[open_stack[--n_open]];
    w->count = insn_counter - w->start - TL_MARKER_INSNS;
    w->closed = 1;
    if (n_open == 0 && out != NULL) {
        write_closed_windows(); /* an outermost window closed: all before it are complete */
        fflush(out);
    }
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t i, n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    for (i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_counter,
                                                   1);
        if (pc == begin_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_begin, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (pc == end_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_end, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void at_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    if (out != NULL) {
        write_closed_windows();
        if (overflowed) {
            fprintf(out, "overflow\n");
        }
        fprintf(out, "total %llu\n", (unsigned long long)insn_counter);
        fclose(out);
        out = NULL;
    }
}

static int parse_addr(const char *text, uint64_t *value)
{
    char *rest;
    unsigned long long v = strtoull(text, &rest, 0);
    if (*text == '\0' || *rest != '\0') {
        return -1;
    }
    *value = (uint64_t)v & ~(uint64_t)1; /* Thumb symbols carry bit 0 */
    return 0;
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    int i;
    const char *out_path = NULL;
    (void)info;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (strncmp(a, "begin=", 6) == 0) {
            bad = parse_addr(a + 6, &begin_addr);
        } else if (strncmp(a, "end=", 4) == 0) {
            bad = parse_addr(a + 4, &end_addr);
        } else if (strncmp(a, "out=", 4) == 0) {
            out_path = a + 4;
        } else {
            bad = 1;
        }
        if (bad) {
            qemu_plugin_outs("insn_count: bad argument (want begin=ADDR,end=ADDR,out=FILE)\n");
            return -1;
        }
    }
    if (out_path == NULL) {
        qemu_plugin_outs("insn_count: missing out=FILE\n");
        return -1;
    }
    out = fopen(out_path, "w");
    if (out == NULL) {
        qemu_plugin_outs("insn_count: cannot open the out= file\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
