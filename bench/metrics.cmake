# metrics_scrape (issue 24 item 4): GET /metrics of a real dfnet-manager holding 100,000
# bound nodes (100 simulated hosts in the bench process), beside the floor of a 404 on the
# same listener, and over TLS with a viewer certificate through curl. Prints figures; run it
# by hand.
if(TARGET dfnet_testhost)
  add_executable(metrics_scrape ${CMAKE_CURRENT_LIST_DIR}/metrics_scrape.c
    ${CMAKE_CURRENT_LIST_DIR}/sim_hosts.c ${CMAKE_CURRENT_LIST_DIR}/bench_util.c)
  target_compile_options(metrics_scrape PRIVATE ${DFNET_WARNINGS})
  target_include_directories(metrics_scrape PRIVATE "${CMAKE_CURRENT_LIST_DIR}")
  target_link_libraries(metrics_scrape PRIVATE dfnet_testhost)
  add_dependencies(metrics_scrape dfnet-manager)
endif()
