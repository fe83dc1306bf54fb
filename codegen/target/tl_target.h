/*
 * tl_target.h - what a test program sees of tinylstm's bare-metal Cortex-M start-up.
 *
 * The start-up (tl_startup.c) zeroes .bss, copies .data, enables the FPU when the build
 * uses one, opens the semihosting console and calls main(argc, argv) with the arguments
 * given to QEMU; main's return value becomes QEMU's exit code. stdio (fopen, fread,
 * fwrite, printf) works on host files through semihosting, relative to QEMU's directory.
 *
 * Instruction counting: the QEMU plugin insn_count.c counts the instructions executed
 * between a call to tl_bench_begin() and the next call to tl_bench_end(). Pairs may nest
 * (per-inference window around per-step windows); each pair is one window. An empty
 * window counts 0: the markers' own instructions (the `bx lr` of tl_bench_begin and the
 * call to tl_bench_end) are subtracted.
 */
#ifndef TL_TARGET_H
#define TL_TARGET_H

/* Exit codes of the fault handlers (main should return 0..127). */
#define TL_EXIT_NMI 241
#define TL_EXIT_HARDFAULT 242
#define TL_EXIT_MEMMANAGE 243
#define TL_EXIT_BUSFAULT 244
#define TL_EXIT_USAGEFAULT 245
#define TL_EXIT_SECUREFAULT 246
#define TL_EXIT_UNEXPECTED_IRQ 247

/* Window markers: each body is a single `bx lr`, in its own translation unit. */
void tl_bench_begin(void);
void tl_bench_end(void);

#endif /* TL_TARGET_H */
