# store_bench: the manager's durable store (manager/store.h) with 10,000 leases and 100,000
# audit rows: start-up and per-change costs beside their floors (issue 20 "Benchmark").
# Prints figures; run it by hand.
if(TARGET dfnet_manager_store)
  add_executable(store_bench store_bench.c bench_util.c)
  target_compile_options(store_bench PRIVATE ${DFNET_WARNINGS})
  target_link_libraries(store_bench PRIVATE dfnet_manager_store PkgConfig::SQLITE3)
endif()
