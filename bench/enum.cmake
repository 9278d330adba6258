# enum_bench: the host enumerators' start() cost and USB hot-plug-to-sink latency under
# umockdev (bench/enum_bench.c). Prints figures; run it by hand.
if(TARGET dfnet_enum AND UMOCKDEV_FOUND)
  add_executable(enum_bench enum_bench.c)
  target_compile_options(enum_bench PRIVATE ${DFNET_WARNINGS})
  target_compile_definitions(enum_bench PRIVATE
    DFNET_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  target_link_libraries(enum_bench PRIVATE dfnet_enum PkgConfig::UMOCKDEV Threads::Threads)
endif()
