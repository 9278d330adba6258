# driver_calls_bench (issue 18 "Benchmark"): calls between drivers through a real fabric
# (dfnet-manager, two dfnet-host agents, dfnet-driver-host processes; the parent test driver
# and the measuring driver bench/drivers/call_bench.c), in process, across driver hosts and
# across boards, beside the floors they are compared with (the single-hop secure-websocket
# floor against the scripted peer of tests/clients, the end-to-end client unary), in one run.
if(TARGET dfnet_client_static AND TARGET dfnet_scripted_server AND TARGET dfnet_fabric
   AND TARGET dfnet_test_driver_parent)
  # The measuring driver, a MODULE .so like tests/drivers' (symbols resolved against
  # dfnet-driver-host at dlopen time), in <build>/bench/drivers/.
  add_library(dfnet_bench_driver_call_bench MODULE drivers/call_bench.c)
  target_compile_options(dfnet_bench_driver_call_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(dfnet_bench_driver_call_bench PRIVATE "${CMAKE_SOURCE_DIR}/include")
  set_target_properties(dfnet_bench_driver_call_bench PROPERTIES PREFIX "" OUTPUT_NAME call_bench
    LIBRARY_OUTPUT_DIRECTORY "${CMAKE_BINARY_DIR}/bench/drivers")

  add_executable(driver_calls_bench driver_calls_bench.c bench_util.c client_calls.c)
  target_compile_options(driver_calls_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(driver_calls_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/clients"
    "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(driver_calls_bench PRIVATE
    DRIVER_CALLS_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    DRIVER_CALLS_BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(driver_calls_bench PRIVATE dfnet_fabric dfnet_client_static
    dfnet_scripted_server dfnet_bind Threads::Threads)
  add_dependencies(driver_calls_bench dfnet_bench_driver_call_bench dfnet_test_driver_parent)
endif()
