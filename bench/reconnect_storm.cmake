# reconnect_storm (issue 23 item 5 "Benchmark"): N simulated hosts (1,000) in one process
# against a real dfnet-manager, restarted twice in one run: with TLS session tickets and with
# --no-tls-tickets; time until every host has a session and its node is reconciled, beside
# the floor (the manager's own restart). Prints figures; run it by hand.
if(TARGET dfnet_testhost)
  add_executable(reconnect_storm ${CMAKE_CURRENT_LIST_DIR}/reconnect_storm.c
    ${CMAKE_CURRENT_LIST_DIR}/sim_hosts.c ${CMAKE_CURRENT_LIST_DIR}/bench_util.c)
  target_compile_options(reconnect_storm PRIVATE ${DFNET_WARNINGS})
  target_compile_definitions(reconnect_storm PRIVATE
    RECONNECT_STORM_BUILD_DIR="${CMAKE_BINARY_DIR}")
  target_include_directories(reconnect_storm PRIVATE "${CMAKE_CURRENT_LIST_DIR}")
  target_link_libraries(reconnect_storm PRIVATE dfnet_testhost)
  add_dependencies(reconnect_storm dfnet-manager)
endif()
