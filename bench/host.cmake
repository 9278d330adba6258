# host_bench: dfnet-host's figures (issue 6 "Targets"): agent idle RSS, DriverStart with a
# cache miss and hit, calls through the agent. Runs the real agent against the scripted
# peer of tests/host_agent.
if(TARGET dfnet-host AND TARGET dfnet_test_driver_echo)
  add_executable(host_bench ${CMAKE_CURRENT_LIST_DIR}/host_bench.c
    ${CMAKE_SOURCE_DIR}/tests/host_agent/peer.c)
  target_compile_options(host_bench PRIVATE ${DFNET_WARNINGS})
  target_include_directories(host_bench PRIVATE "${CMAKE_SOURCE_DIR}/tests/host_agent")
  target_link_libraries(host_bench PRIVATE dfnet_transport dfnet_pki dfnet_package
    dfnet_test_child Threads::Threads)
  target_compile_definitions(host_bench PRIVATE
    DFNET_HOST_BIN="$<TARGET_FILE:dfnet-host>"
    DFNET_DRIVER_HOST_BIN="$<TARGET_FILE:dfnet-driver-host>"
    DFNET_ECHO_SO="$<TARGET_FILE:dfnet_test_driver_echo>")
  add_dependencies(host_bench dfnet-host dfnet-driver-host dfnet_test_driver_echo)
endif()
