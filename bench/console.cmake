# console_bench (issue 21 "Benchmark"): the console's echo latency through a real fabric
# (dfnet-manager, dfnet-host, the serial driver on a pty whose other side echoes), beside
# the Write round trip to the same driver. Prints figures; run it by hand.
if(TARGET dfnet_client_static AND TARGET dfnet_fabric AND TARGET driver-serial)
  add_executable(console_bench console_bench.c bench_util.c)
  target_compile_options(console_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(console_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(console_bench PRIVATE
    CONSOLE_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    CONSOLE_BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(console_bench PRIVATE dfnet_fabric dfnet_client_static util
    Threads::Threads)
  add_dependencies(console_bench driver-serial)
endif()
