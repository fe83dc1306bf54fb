"""The cbuild stage: compile the generated C and run it, on the host (:mod:`.host`, gcc/clang,
sanitizers) and on emulated Cortex-M cores (:mod:`.emulated`, QEMU; the cores, cross builds and
ELF sizes in :mod:`.cores`), with the compilers found by :mod:`.toolchain`."""
