# rpc_bench (issue 7): calls through libdfnet-client, end to end through a real fabric
# (dfnet-manager, dfnet-host, dfnet-driver-host, the echo test driver: tests/integration's
# fabric helper) and the single-hop floor against the scripted manager peer of
# tests/clients (real transport, real TLS), in one run.
if(TARGET dfnet_client_static AND TARGET dfnet_scripted_server AND TARGET dfnet_fabric)
  add_executable(rpc_bench rpc_bench.c bench_util.c client_calls.c)
  target_compile_options(rpc_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(rpc_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/clients"
    "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(rpc_bench PRIVATE
    RPC_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    RPC_BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(rpc_bench PRIVATE dfnet_fabric dfnet_client_static
    dfnet_scripted_server Threads::Threads)
endif()
