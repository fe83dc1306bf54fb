"""The cbuild stage: compile the generated C and run it.

- :mod:`.harness` the sources of a build: generated models, runtime and the C test harness of
  ``codegen/harness/`` (one harness for the host and the cores); :mod:`.protocol` Python's side
  of its binary protocol (rows in, outputs and LSTM traces out).
- :mod:`.host` on the host (gcc/clang, sanitizers): ``build_host``, ``run_c``, ``host_runner``.
- :mod:`.emulated` on emulated Cortex-M cores: ``build_target``, ``run_target``, ``count_steps``,
  ``target_footprint``, ``target_runner(s)``; below it :mod:`.cores` (the core table and memory
  maps), :mod:`.crossbuild` (arm-none-eabi-gcc), :mod:`.qemu` (running and instruction counting),
  :mod:`.elfsize` (section, symbol and stack sizes) and :mod:`.footprint` (a model's share).
- :mod:`.toolchain` finds and runs the compilers (``ToolchainError``, ``missing_reason``).
"""
