# The manager's durable store, <state-dir>/dfnet.db, on SQLite (manager/store.h; issue 20
# "Leases", item 7). Included from manager/CMakeLists.txt.
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET GLOBAL sqlite3)
add_library(dfnet_manager_store STATIC
  ${CMAKE_CURRENT_LIST_DIR}/store.c
  ${CMAKE_CURRENT_LIST_DIR}/store_sql.c
  ${CMAKE_CURRENT_LIST_DIR}/store_tx.c
  ${CMAKE_CURRENT_LIST_DIR}/store_write.c
  ${CMAKE_CURRENT_LIST_DIR}/store_counter.c
  ${CMAKE_CURRENT_LIST_DIR}/store_check.c
  ${CMAKE_CURRENT_LIST_DIR}/store_schema.c
  ${CMAKE_CURRENT_LIST_DIR}/store_lease.c
  ${CMAKE_CURRENT_LIST_DIR}/store_queue.c
  ${CMAKE_CURRENT_LIST_DIR}/store_audit.c
  ${CMAKE_CURRENT_LIST_DIR}/store_state.c
  ${CMAKE_CURRENT_LIST_DIR}/store_cert.c
  ${CMAKE_CURRENT_LIST_DIR}/store_token.c)
target_compile_options(dfnet_manager_store PRIVATE ${DFNET_WARNINGS})
target_link_libraries(dfnet_manager_store PUBLIC dfnet_manager_core dfnet_pki
  PRIVATE PkgConfig::SQLITE3)
