# join_first_node (issue 23 "Benchmark"): `dfnet-host join` and the joined agent's start
# until the manager shows its root node, p50 over rounds, beside the floor (an agent from a
# certificate issued beforehand). A real manager and agents; prints figures, run by hand.
if(TARGET dfnet_fabric)
  add_executable(join_first_node ${CMAKE_CURRENT_LIST_DIR}/join_first_node.c
    ${CMAKE_SOURCE_DIR}/tests/integration/cli_run.c)
  target_compile_options(join_first_node PRIVATE ${DFNET_WARNINGS})
  target_include_directories(join_first_node PRIVATE "${CMAKE_SOURCE_DIR}/tests")
  target_link_libraries(join_first_node PRIVATE dfnet_fabric PkgConfig::CJSON)
endif()
