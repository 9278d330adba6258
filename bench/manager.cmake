# manager_scale: the real dfnet-manager with 100,000 nodes from 100 host sessions, 200
# drivers, and 1,000 idle sessions (issue 5 "Benchmark"). Prints figures; asserts nothing.
if(TARGET dfnet_testhost)
  add_executable(manager_scale ${CMAKE_CURRENT_LIST_DIR}/manager_scale.c
    ${CMAKE_CURRENT_LIST_DIR}/sim_hosts.c ${CMAKE_CURRENT_LIST_DIR}/bench_util.c)
  target_compile_options(manager_scale PRIVATE ${DFNET_WARNINGS})
  target_include_directories(manager_scale PRIVATE "${CMAKE_CURRENT_LIST_DIR}")
  target_link_libraries(manager_scale PRIVATE dfnet_testhost)
  add_dependencies(manager_scale dfnet-manager)
endif()
