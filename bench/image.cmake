# image_bench (issue "Images" Benchmark): `dfnet image write`'s upload into a host's artifact
# cache and the block driver's WriteImage through a real fabric (dfnet-manager, dfnet-host,
# the block driver, the echo test driver), caches and device on /dev/shm, beside rpc_bench's
# streaming figure and mbedTLS's SHA-256 rate measured in the same run. Prints figures; run
# it by hand.
if(TARGET dfnet_client_static AND TARGET dfnet_scripted_server AND TARGET dfnet_fabric
   AND TARGET dfnet_cli_lib AND TARGET driver-block)
  add_executable(image_bench image_bench.c bench_util.c client_calls.c)
  target_compile_options(image_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(image_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/clients"
    "${CMAKE_SOURCE_DIR}/tests")
  target_compile_definitions(image_bench PRIVATE
    IMAGE_BENCH_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
    IMAGE_BENCH_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_link_libraries(image_bench PRIVATE dfnet_cli_lib dfnet_fabric dfnet_client_static
    dfnet_scripted_server Threads::Threads)
  add_dependencies(image_bench dfnet_drivers dfnet-host dfnet-manager)
endif()
