# driver_host_bench: driver host start time and the socketpair call round trip (issue 6), for
# driver hosts sandboxed beside unsandboxed ones (issue 22: the driver user of
# tests/driver_user.h).
add_executable(driver_host_bench driver_host_bench.c)
target_compile_options(driver_host_bench PRIVATE ${DFNET_WARNINGS})
target_link_libraries(driver_host_bench PRIVATE dfnet_supervisor dfnet_test_driver_user)
target_compile_definitions(driver_host_bench PRIVATE
  DFNET_TEST_DRIVER_DIR="$<TARGET_FILE_DIR:dfnet_test_driver_echo>")
add_dependencies(driver_host_bench dfnet_test_driver_echo dfnet-driver-host)
