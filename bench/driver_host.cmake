# driver_host_bench: driver host start time and the socketpair call round trip (issue 6).
add_executable(driver_host_bench driver_host_bench.c)
target_compile_options(driver_host_bench PRIVATE ${DFNET_WARNINGS})
target_link_libraries(driver_host_bench PRIVATE dfnet_supervisor)
target_compile_definitions(driver_host_bench PRIVATE
  DFNET_TEST_DRIVER_DIR="$<TARGET_FILE_DIR:dfnet_test_driver_echo>")
add_dependencies(driver_host_bench dfnet_test_driver_echo)
