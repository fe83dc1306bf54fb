/*
 * tl_startup.c - bare-metal start-up for tinylstm's Cortex-M test programs under QEMU.
 *
 * One file for every core (Armv6-M to Armv8.1-M): the vector table, the reset handler,
 * fault handlers that report the faulting PC and exit QEMU with a distinctive code, the
 * semihosting command line -> argv, and the two instruction-counting markers. Linked with
 * -nostartfiles and a tinylstm linker script (tl_sections.ld), against newlib-nano and
 * librdimon (semihosting system calls).
 *
 * Its symbols are named tlboot_* so that size reports can tell them from the LSTM runtime
 * (tl_*) and the model data (<prefix>_*); only the markers tl_bench_begin/end (2 bytes
 * each) share the runtime's prefix.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "tl_target.h"

/* ---- symbols from the linker script and the C library ------------------------------ */
extern uint32_t __tlboot_data_load[];  /* .data image in flash */
extern uint32_t __tlboot_data_start[]; /* .data in RAM */
extern uint32_t __tlboot_data_end[];
extern uint32_t __tlboot_bss_start[];
extern uint32_t __tlboot_bss_end[];
extern char __tlboot_heap_end[];    /* the heap's upper bound */
extern char __tlboot_guard[];       /* 256 bytes between heap and stack */
extern char __tlboot_stack_limit[]; /* lowest address the stack may reach */
extern char __tlboot_stack_top[];   /* initial main stack pointer */
extern char __tlboot_ram_start[];
extern void *__heap_limit;          /* librdimon's _sbrk refuses to grow the heap past this */

int main(int argc, char **argv);
void initialise_monitor_handles(void);

void tlboot_reset_handler(void);
void tlboot_fault_common(void);
void tlboot_fault_report(const uint32_t *frame, uint32_t code);
void tlboot_nmi_handler(void);
void tlboot_hardfault_handler(void);
void tlboot_memmanage_handler(void);
void tlboot_busfault_handler(void);
void tlboot_usagefault_handler(void);
void tlboot_securefault_handler(void);
void tlboot_default_handler(void);

/* Armv8-M Mainline and Armv8.1-M have a main-stack limit register. */
#if defined(__ARM_ARCH) && __ARM_ARCH >= 8 && defined(__ARM_ARCH_ISA_THUMB) && \
    __ARM_ARCH_ISA_THUMB >= 2
#define TLBOOT_HAS_MSPLIM 1
#else
#define TLBOOT_HAS_MSPLIM 0
#endif

/* ---- semihosting -------------------------------------------------------------------- */
#define TLBOOT_SYS_WRITE0 0x04
#define TLBOOT_SYS_GET_CMDLINE 0x15
#define TLBOOT_SYS_EXIT_EXTENDED 0x20
#define TLBOOT_ADP_STOPPED_APPLICATION_EXIT 0x20026

static uint32_t tlboot_semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

/* ---- vector table --------------------------------------------------------------------- */
#define TLBOOT_N_IRQ 32

typedef void (*tlboot_handler_t)(void);

struct tlboot_vector_table {
    void *initial_sp;
    tlboot_handler_t system[15]; /* reset .. SysTick */
    tlboot_handler_t irq[TLBOOT_N_IRQ];
};

#define TLBOOT_DEF tlboot_default_handler

__attribute__((section(".tlboot_vectors"), used))
const struct tlboot_vector_table tlboot_vectors = {
    __tlboot_stack_top,
    {
        tlboot_reset_handler,       /*  1 Reset */
        tlboot_nmi_handler,         /*  2 NMI */
        tlboot_hardfault_handler,   /*  3 HardFault */
        tlboot_memmanage_handler,   /*  4 MemManage (v7-M and later) */
        tlboot_busfault_handler,    /*  5 BusFault */
        tlboot_usagefault_handler,  /*  6 UsageFault */
        tlboot_securefault_handler, /*  7 SecureFault (v8-M) */
        NULL, NULL, NULL,           /*  8-10 reserved */
        TLBOOT_DEF,                 /* 11 SVCall */
        TLBOOT_DEF,                 /* 12 DebugMonitor */
        NULL,                       /* 13 reserved */
        TLBOOT_DEF,                 /* 14 PendSV */
        TLBOOT_DEF,                 /* 15 SysTick */
    },
    {
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
        TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF, TLBOOT_DEF,
    },
};

/* ---- command line -> argv --------------------------------------------------------------- */
#define TLBOOT_CMDLINE_MAX 1024
#define TLBOOT_ARGV_MAX 32

static char tlboot_cmdline[TLBOOT_CMDLINE_MAX];
static char *tlboot_argv[TLBOOT_ARGV_MAX + 1];

/* QEMU joins its semihosting arg= values with single spaces; split them back. */
static int tlboot_read_args(void)
{
    struct {
        char *buf;
        uint32_t len;
    } block = {tlboot_cmdline, TLBOOT_CMDLINE_MAX - 1};
    int argc = 0;
    char *p = tlboot_cmdline;
    if (tlboot_semihost(TLBOOT_SYS_GET_CMDLINE, &block) != 0) {
        return 0;
    }
    tlboot_cmdline[TLBOOT_CMDLINE_MAX - 1] = '\0';
    while (*p != '\0' && argc < TLBOOT_ARGV_MAX) {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        tlboot_argv[argc++] = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
    }
    tlboot_argv[argc] = NULL;
    return argc;
}

/* ---- stack guard ------------------------------------------------------------------------ */
/* A stack that overflows into the heap faults (reported as a HardFault) instead of silently
 * corrupting data: Armv8-M uses the stack-limit register; older cores get a 256-byte
 * no-access MPU region (__tlboot_guard) just below the stack reserve, ignored while
 * handling the fault. */
static void tlboot_guard_stack(void)
{
#if TLBOOT_HAS_MSPLIM
    __asm__ volatile("msr msplim, %0" : : "r"(__tlboot_stack_limit) : "memory");
#else
    volatile uint32_t *const mpu_type = (volatile uint32_t *)0xE000ED90u;
    volatile uint32_t *const mpu_ctrl = (volatile uint32_t *)0xE000ED94u;
    volatile uint32_t *const mpu_rnr = (volatile uint32_t *)0xE000ED98u;
    volatile uint32_t *const mpu_rbar = (volatile uint32_t *)0xE000ED9Cu;
    volatile uint32_t *const mpu_rasr = (volatile uint32_t *)0xE000EDA0u;
    if (((*mpu_type >> 8) & 0xFFu) == 0u) {
        return; /* no MPU */
    }
    *mpu_rnr = 0u;
    *mpu_rbar = (uint32_t)(uintptr_t)__tlboot_guard;
    /* XN, AP = no access, SIZE = log2(256) - 1, enabled */
    *mpu_rasr = (1u << 28) | (0u << 24) | (7u << 1) | 1u;
    *mpu_ctrl = (1u << 2) | 1u; /* PRIVDEFENA: default map elsewhere; ENABLE */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

/* ---- reset -------------------------------------------------------------------------------- */
void tlboot_reset_handler(void)
{
    uint32_t *src = __tlboot_data_load;
    uint32_t *dst = __tlboot_data_start;
    while (dst < __tlboot_data_end) {
        *dst++ = *src++;
    }
    for (dst = __tlboot_bss_start; dst < __tlboot_bss_end; dst++) {
        *dst = 0u;
    }
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU and MVE) before any FP/vector instruction. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    __heap_limit = __tlboot_heap_end;
    tlboot_guard_stack();
    initialise_monitor_handles();
    exit(main(tlboot_read_args(), tlboot_argv));
}

/* ---- faults ----------------------------------------------------------------------------- */
static uint32_t tlboot_fault_stack[128] __attribute__((aligned(8)));
uint32_t *const tlboot_fault_stack_top = tlboot_fault_stack + 128;

/* Each vector loads its exit code into r1 and jumps to tlboot_fault_common (no stack used). */
#define TLBOOT_STR2(x) #x
#define TLBOOT_STR(x) TLBOOT_STR2(x)
#define TLBOOT_FAULT_VECTOR(name, code)                                                 \
    __attribute__((naked)) void name(void)                                              \
    {                                                                                   \
        __asm__ volatile(".syntax unified\n\t"                                          \
                         "movs r1, #" TLBOOT_STR(code) "\n\t"                           \
                         "ldr r2, =tlboot_fault_common\n\t"                             \
                         "bx r2\n\t"                                                    \
                         ".ltorg");                                                     \
    }

TLBOOT_FAULT_VECTOR(tlboot_nmi_handler, TL_EXIT_NMI)
TLBOOT_FAULT_VECTOR(tlboot_hardfault_handler, TL_EXIT_HARDFAULT)
TLBOOT_FAULT_VECTOR(tlboot_memmanage_handler, TL_EXIT_MEMMANAGE)
TLBOOT_FAULT_VECTOR(tlboot_busfault_handler, TL_EXIT_BUSFAULT)
TLBOOT_FAULT_VECTOR(tlboot_usagefault_handler, TL_EXIT_USAGEFAULT)
TLBOOT_FAULT_VECTOR(tlboot_securefault_handler, TL_EXIT_SECUREFAULT)
TLBOOT_FAULT_VECTOR(tlboot_default_handler, TL_EXIT_UNEXPECTED_IRQ)

/* r0 = stacked exception frame (MSP or PSP per EXC_RETURN bit 2), then a fresh stack. */
__attribute__((naked)) void tlboot_fault_common(void)
{
    __asm__ volatile(".syntax unified\n\t"
                     "mov r0, lr\n\t"
                     "movs r3, #4\n\t"
                     "tst r0, r3\n\t"
                     "beq 1f\n\t"
                     "mrs r0, psp\n\t"
                     "b 2f\n"
                     "1:\n\t"
                     "mrs r0, msp\n"
                     "2:\n\t"
#if TLBOOT_HAS_MSPLIM
                     "movs r2, #0\n\t"
                     "msr msplim, r2\n\t" /* the fault stack lies below the limit */
#endif
                     "ldr r2, =tlboot_fault_stack_top\n\t"
                     "ldr r2, [r2]\n\t"
                     "mov sp, r2\n\t"
                     "ldr r2, =tlboot_fault_report\n\t"
                     "bx r2\n\t"
                     ".ltorg");
}

static char *tlboot_put_str(char *p, const char *s)
{
    while (*s != '\0') {
        *p++ = *s++;
    }
    return p;
}

static char *tlboot_put_hex(char *p, uint32_t v)
{
    int shift;
    p = tlboot_put_str(p, "0x");
    for (shift = 28; shift >= 0; shift -= 4) {
        *p++ = "0123456789abcdef"[(v >> (uint32_t)shift) & 0xFu];
    }
    return p;
}

static const char *tlboot_fault_name(uint32_t code)
{
    switch (code) {
    case TL_EXIT_NMI: return "NMI";
    case TL_EXIT_HARDFAULT: return "HardFault";
    case TL_EXIT_MEMMANAGE: return "MemManage";
    case TL_EXIT_BUSFAULT: return "BusFault";
    case TL_EXIT_USAGEFAULT: return "UsageFault";
    case TL_EXIT_SECUREFAULT: return "SecureFault";
    default: return "unexpected interrupt";
    }
}

/* Print "tinylstm-fault: <name> pc=.. lr=.. [cfsr=.. hfsr=..] [stack-overflow]" on the
 * semihosting console (QEMU's stderr), then exit QEMU with the fault's code. */
void tlboot_fault_report(const uint32_t *frame, uint32_t code)
{
    static char msg[192];
    const uintptr_t sp = (uintptr_t)frame;
    uint32_t block[2];
    char *p = tlboot_put_str(msg, "tinylstm-fault: ");
    p = tlboot_put_str(p, tlboot_fault_name(code));
    if (sp >= (uintptr_t)__tlboot_ram_start && sp + 32u <= (uintptr_t)__tlboot_stack_top) {
        p = tlboot_put_str(p, " pc=");
        p = tlboot_put_hex(p, frame[6]);
        p = tlboot_put_str(p, " lr=");
        p = tlboot_put_hex(p, frame[5]);
    } else { /* no exception frame to read */
        p = tlboot_put_str(p, " sp=");
        p = tlboot_put_hex(p, (uint32_t)sp);
        p = tlboot_put_str(p, " (outside RAM)");
    }
#if __ARM_ARCH_ISA_THUMB >= 2
    {
        const uint32_t cfsr = *(volatile const uint32_t *)0xE000ED28u;
        const uint32_t mmfar = *(volatile const uint32_t *)0xE000ED34u;
        const uint32_t guard = (uint32_t)(uintptr_t)__tlboot_guard;
        p = tlboot_put_str(p, " cfsr=");
        p = tlboot_put_hex(p, cfsr);
        p = tlboot_put_str(p, " hfsr=");
        p = tlboot_put_hex(p, *(volatile const uint32_t *)0xE000ED2Cu);
        /* STKOF (v8-M stack limit), or a MemManage access inside the MPU guard (v7-M) */
        if ((cfsr & (1u << 20)) != 0u || ((cfsr & (1u << 7)) != 0u && mmfar - guard < 256u)) {
            p = tlboot_put_str(p, " stack-overflow");
        }
    }
#endif
    p = tlboot_put_str(p, "\n");
    *p = '\0';
    (void)tlboot_semihost(TLBOOT_SYS_WRITE0, msg);
    block[0] = TLBOOT_ADP_STOPPED_APPLICATION_EXIT;
    block[1] = code;
    for (;;) {
        (void)tlboot_semihost(TLBOOT_SYS_EXIT_EXTENDED, block);
    }
}

/* ---- instruction-counting markers --------------------------------------------------------- */
/* Exactly one instruction each; the plugin matches their addresses (from the ELF symbols). */
__attribute__((naked, noinline)) void tl_bench_begin(void)
{
    __asm__ volatile("bx lr");
}

__attribute__((naked, noinline)) void tl_bench_end(void)
{
    __asm__ volatile("bx lr");
}
