# lease_bench (issue 20 "Benchmark"): leases through libdfnet-client against a real fabric
# (tests/integration's fabric helper, as rpc_bench): the acquire + release round trip beside a
# ListNodes{exact} round trip, rpc_bench's 16-in-flight figure with a lease held and without,
# and the manager's start-up with 10,000 leases and 100,000 audit rows written through the
# store (manager/store.h) beside an empty store's. Prints figures; run it by hand.
if(TARGET dfnet_client_static AND TARGET dfnet_scripted_server AND TARGET dfnet_fabric
   AND TARGET dfnet_manager_store)
  add_executable(lease_bench lease_bench.c bench_util.c client_calls.c
    "${CMAKE_SOURCE_DIR}/tests/integration/cli_run.c")
  target_compile_options(lease_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(lease_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/clients"
    "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(lease_bench PRIVATE
    LEASE_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    LEASE_BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(lease_bench PRIVATE dfnet_fabric dfnet_client_static
    dfnet_scripted_server dfnet_manager_store Threads::Threads)
endif()
