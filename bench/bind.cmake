# bind_bench: one node of 12 properties against 1,000 verified programs (issue 4).
add_executable(bind_bench bind_bench.c)
target_compile_options(bind_bench PRIVATE ${DFNET_WARNINGS})
target_compile_definitions(bind_bench PRIVATE DFNET_BIND_LIB_DIR="${DFNET_BIND_LIB_DIR}")
target_link_libraries(bind_bench PRIVATE dfnet_bind)
